import { type Kysely, sql } from "kysely";
import { prepare, type Rows, type Statement, statement } from "./prepared.js";
import type { Database } from "./schema.js";

/** The counters' statements both dialects share (table `rate_limits`); each dialect adds its own take. */
export function counterStatements(db: Kysely<Database>) {
  return {
    /** One unit from the bucket, unless it is full: no row then. A window that has ended starts again. */
    take: prepare<{ key: string; now: number; resetAt: number; limit: number }>((p) => ({
      compile: () =>
        sql`insert into rate_limits (key, count, reset_at) values (${p.key}, 1, ${p.resetAt})
          on conflict (key) do update set
            count = case when rate_limits.reset_at <= ${p.now} then 1 else rate_limits.count + 1 end,
            reset_at = case when rate_limits.reset_at <= ${p.now} then ${p.resetAt} else rate_limits.reset_at end
          where rate_limits.reset_at <= ${p.now} or rate_limits.count < ${p.limit}
          returning count`.compile(db),
    })),
    /** One unit more, whatever the count (a counter without a limit). */
    add: prepare<{ key: string; now: number; resetAt: number }>((p) => ({
      compile: () =>
        sql`insert into rate_limits (key, count, reset_at) values (${p.key}, 1, ${p.resetAt})
          on conflict (key) do update set
            count = case when rate_limits.reset_at <= ${p.now} then 1 else rate_limits.count + 1 end,
            reset_at = case when rate_limits.reset_at <= ${p.now} then ${p.resetAt} else rate_limits.reset_at end`.compile(db),
    })),
    giveBack: prepare<{ key: string; now: number }>((p) =>
      db
        .updateTable("rate_limits")
        .set((eb) => ({ count: eb("count", "-", 1) }))
        .where("key", "=", p.key)
        .where("reset_at", ">", p.now)
        .where("count", ">", 0),
    ),
    /** A counter given back to nothing is no counter: as if the unit had never been taken. */
    dropEmpty: prepare<{ key: string }>((p) => db.deleteFrom("rate_limits").where("key", "=", p.key).where("count", "<=", 0)),
    read: prepare<{ key: string }>((p) => db.selectFrom("rate_limits").select(["count", "reset_at"]).where("key", "=", p.key)),
    sweep: prepare<{ now: number }>((p) => db.deleteFrom("rate_limits").where("reset_at", "<=", p.now)),
  };
}

export type CounterStatements = ReturnType<typeof counterStatements>;

/**
 * Undoes a take within its own transaction: one unit back to each bucket, and a counter left at zero
 * goes, as if the unit had never been taken (a refusal leaves nothing behind).
 */
export function* giveBackStep(counters: CounterStatements, keys: readonly string[], now: number): Generator<Statement, void, Rows> {
  for (const key of keys) {
    yield statement(counters.giveBack, { key, now });
    yield statement(counters.dropEmpty, { key });
  }
}

/** The names `k0`, `l0`, `r0`… of the values of an `n`-bucket statement, made once rather than per take. */
const BUCKET_NAMES: (readonly [string, string, string])[] = [];

function bucketNames(i: number): readonly [string, string, string] {
  for (let n = BUCKET_NAMES.length; n <= i; n++) BUCKET_NAMES.push([`k${n}`, `l${n}`, `r${n}`]);
  return BUCKET_NAMES[i] as readonly [string, string, string];
}

/** The values of an `n`-bucket statement: `k0`, `l0`, `r0`… (key, limit, window end). */
export function bucketValues(
  buckets: readonly { key: string; limit: number; windowMs: number }[],
  now: number,
): Record<string, string | number> {
  const values: Record<string, string | number> = { now };
  for (let i = 0; i < buckets.length; i++) {
    const bucket = buckets[i] as { key: string; limit: number; windowMs: number };
    const [k, l, r] = bucketNames(i);
    values[k] = bucket.key;
    values[l] = bucket.limit;
    values[r] = now + bucket.windowMs;
  }
  return values;
}

/** Buckets in key order: every take locks its rows in the same order, so two takes never deadlock. */
export function inKeyOrder<B extends { key: string }>(buckets: readonly B[]): B[] {
  return [...buckets].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** A statement per count of buckets, compiled on first use (the counts are a handful). */
export function perCount<Q>(build: (n: number) => Q): (n: number) => Q {
  const compiled = new Map<number, Q>();
  return (n) => {
    let query = compiled.get(n);
    if (query === undefined) {
      query = build(n);
      compiled.set(n, query);
    }
    return query;
  };
}
