import { type Kysely, sql } from "kysely";
import { prepare } from "../prepared.js";
import type { Database } from "../schema.js";
import type { Bucket, Consumed } from "../store.js";
import { type Pending, TurnBatch } from "./turn-batch.js";

/** PostgreSQL's SQLSTATE for division by zero: the all-or-nothing take's way to abort itself. */
export const DIVISION_BY_ZERO = "22012";

export interface FoldedTakeValues {
  keys: string[];
  counts: number[];
  limits: number[];
  resets: number[];
  now: number;
  n: number;
}

/**
 * `k` units from each of many buckets in one statement, or none: rows are taken in key order (the same
 * every time: no deadlock), a bucket takes its `k` only while `count + k` stays within its limit, and
 * the statement divides by zero, which undoes it, when one bucket had no room for all of its `k`.
 */
export function foldedTakeStatement(db: Kysely<Database>) {
  return prepare<FoldedTakeValues>((p) => ({
    compile: () => sql`with ${foldedTakeCtes(p)} select ${allTaken(p)} as taken`.compile(db),
  }));
}

/** `foldedTakeStatement`'s CTEs (take_input, taken), which send-batch.ts puts before the turn's opens. */
export function foldedTakeCtes(p: FoldedTakeValues) {
  return sql`take_input (key, k, lim, reset_at) as (
      select * from unnest(${p.keys}::text[], ${p.counts}::bigint[], ${p.limits}::bigint[], ${p.resets}::bigint[])
    ),
    taken as (
      insert into rate_limits (key, count, reset_at, lim)
      select key, k, reset_at, lim from take_input where k <= lim order by key
      on conflict (key) do update set
        count = case when rate_limits.reset_at <= ${p.now}::bigint then excluded.count else rate_limits.count + excluded.count end,
        reset_at = case when rate_limits.reset_at <= ${p.now}::bigint then excluded.reset_at else rate_limits.reset_at end,
        lim = excluded.lim
      where rate_limits.reset_at <= ${p.now}::bigint or rate_limits.count + excluded.count <= excluded.lim
      returning key
    )`;
}

/** 1 when every bucket took its units; else a division by zero, which aborts (and so undoes) the statement. */
export function allTaken(p: FoldedTakeValues) {
  return sql`case when (select count(*) from taken) = ${p.n}::bigint then 1
    else 1 / ((select count(*) from taken) - (select count(*) from taken)) end`;
}

export interface TakeInput {
  buckets: readonly Bucket[];
  now: number;
}

/**
 * The takes asked for within one turn of the event loop, as one statement: every request of a busy
 * service takes a unit from the same few rows (the global bucket, the one client address, the one
 * user), and each row can change hands only once the transaction that changed it has committed (a WAL
 * flush). One take per request made those flushes a queue; one take per turn makes it one flush for the
 * turn. The folded take asks each bucket for all its units at once, so when every bucket has room for
 * the whole turn every take passes, exactly as one by one. When one bucket has no room for all of them,
 * the folded take undoes itself and each take runs alone (`single`, all or nothing): a bucket near its
 * limit sees the same takes, each one atomic, as it would have without the fold. One batch at a time
 * (TurnBatch): the next turn's takes gather meanwhile.
 */
export class TakeBatch {
  readonly #folded: (values: FoldedTakeValues) => Promise<void>;
  readonly #single: (buckets: readonly Bucket[], now: number) => Promise<Consumed>;
  readonly #turns = new TurnBatch<TakeInput, Consumed>((batch) => this.#run(batch));

  constructor(folded: (values: FoldedTakeValues) => Promise<void>, single: (buckets: readonly Bucket[], now: number) => Promise<Consumed>) {
    this.#folded = folded;
    this.#single = single;
  }

  take(buckets: readonly Bucket[], now: number): Promise<Consumed> {
    return this.#turns.add({ buckets, now });
  }

  async #run(batch: Pending<TakeInput, Consumed>[]): Promise<void> {
    if (batch.length > 1) {
      try {
        await this.#folded(foldedValues(batch.map((take) => take.input)));
        for (const take of batch) take.resolve({ ok: true });
        return;
      } catch (error) {
        if ((error as { code?: unknown }).code !== DIVISION_BY_ZERO) throw error;
      }
    }
    // Alone, or one bucket without room for the whole turn: each take on its own, all or nothing as ever.
    await Promise.all(batch.map((take) => this.#single(take.input.buckets, take.input.now).then(take.resolve, take.reject)));
  }
}

/** The units each bucket of a turn is asked for, by key (in key order), and the turn's latest `now`. */
export function foldedValues(waiting: readonly TakeInput[]): FoldedTakeValues {
  const byKey = new Map<string, { k: number; limit: number; resetAt: number }>();
  let now = 0;
  for (const take of waiting) {
    now = Math.max(now, take.now);
    for (const bucket of take.buckets) {
      const entry = byKey.get(bucket.key);
      if (entry === undefined) byKey.set(bucket.key, { k: 1, limit: bucket.limit, resetAt: take.now + bucket.windowMs });
      else {
        entry.k++;
        entry.limit = Math.min(entry.limit, bucket.limit);
      }
    }
  }
  const keys = [...byKey.keys()].sort();
  const values: FoldedTakeValues = { keys, counts: [], limits: [], resets: [], now, n: keys.length };
  for (const key of keys) {
    const entry = byKey.get(key) as { k: number; limit: number; resetAt: number };
    values.counts.push(entry.k);
    values.limits.push(entry.limit);
    values.resets.push(entry.resetAt);
  }
  return values;
}
