import { sql } from "kysely";
import type { KyselyStore } from "../store/kysely-store.js";
import { type Prepared, prepare, type Rows, type Runner, type Statement, type Step, statement } from "../store/prepared.js";
import type { Store } from "../store/store.js";
import { type Bucket, BucketFull, type Consumed, type Counter, type Limiter } from "./limiter.js";

/** PostgreSQL's SQLSTATE for division by zero: the all-or-nothing statement's way to abort itself. */
const DIVISION_BY_ZERO = "22012";

/** Expired windows are swept at most this often: the table stays about the size of the live windows. */
const SWEEP_EVERY_MS = 60_000;

/**
 * The limiter on the database (SQLite or PostgreSQL), table `rate_limits`. Each bucket is one conditional
 * `INSERT … ON CONFLICT … DO UPDATE … WHERE … RETURNING`; a consume runs its buckets in one transaction,
 * in key order (no deadlock between two consumes on PostgreSQL), and rolls back when one is full.
 */
export class SqlLimiter implements Limiter {
  readonly name = "sql";
  readonly #store: KyselyStore;
  readonly #run: Runner;
  readonly #q: ReturnType<typeof statements>;
  /** When expired windows were last swept (each process sweeps at most once a minute). */
  #sweptAt = 0;

  constructor(store: KyselyStore) {
    this.#store = store;
    this.#run = store.runner;
    this.#q = statements(store);
  }

  async consume(buckets: readonly Bucket[], now: number): Promise<Consumed> {
    if (buckets.length === 0) return { ok: true };
    if (this.#sweepDue(now)) await this.#run.one(statement(this.#q.sweep, { now }));
    const q = this.#q;
    const ordered = [...buckets].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (this.#store.dialect === "postgres") return this.#consumePg(ordered, now);
    try {
      await this.#run.transaction(() => takeEach(q, ordered, now));
      return { ok: true };
    } catch (error) {
      if (error instanceof BucketFull) return { ok: false, rule: error.rule, retryAfterMs: error.retryAfterMs };
      throw error;
    }
  }

  /** SQLite: the same statements, to run inside a send's or a try's own transaction (one commit for both). */
  stepsFor(buckets: readonly Bucket[], now: number, store: Store): (() => Step<void>) | null {
    if (store !== this.#store || this.#store.dialect !== "sqlite" || buckets.length === 0) return null;
    if (this.#sweepDue(now)) void this.#run.one(statement(this.#q.sweep, { now })).catch(() => {});
    const q = this.#q;
    const ordered = [...buckets].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return () => takeEach(q, ordered, now);
  }

  /** SQLite: counting `keys` inside a transaction of this very database (a verification's own). */
  addStepsFor(keys: readonly string[], windowMs: number, now: number, store: Store): (() => Step<void>) | null {
    if (store !== this.#store || this.#store.dialect !== "sqlite" || keys.length === 0) return null;
    const q = this.#q;
    return function* () {
      for (const key of keys) yield statement(q.add, { key, now, resetAt: now + windowMs });
    };
  }

  /**
   * PostgreSQL: every bucket in one statement, in autocommit, so the rows stay locked for the statement
   * only (one round trip, not a transaction of three). The statement aborts itself when a bucket is full,
   * which undoes the units it took; then one read says which bucket and until when.
   */
  async #consumePg(ordered: Bucket[], now: number): Promise<Consumed> {
    const values: Record<string, string | number> = { now };
    ordered.forEach((bucket, i) => {
      values[`k${i}`] = bucket.key;
      values[`l${i}`] = bucket.limit;
      values[`r${i}`] = now + bucket.windowMs;
    });
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#run.one(statement(this.#q.takeAll(ordered.length), values));
        return { ok: true };
      } catch (error) {
        if ((error as { code?: unknown }).code !== DIVISION_BY_ZERO) throw error;
      }
      const counters = await this.read(
        ordered.map((bucket) => bucket.key),
        now,
      );
      const full = ordered.findIndex((bucket, i) => (counters[i]?.count ?? 0) >= bucket.limit);
      const bucket = ordered[full];
      // A unit freed between the two statements: try once more, then count it as full.
      if (bucket !== undefined) return { ok: false, rule: bucket.rule, retryAfterMs: Math.max(0, (counters[full]?.resetAt ?? now) - now) };
      if (attempt >= 1) return { ok: false, rule: ordered[0]?.rule ?? "global", retryAfterMs: 1000 };
    }
  }

  #sweepDue(now: number): boolean {
    if (now - this.#sweptAt < SWEEP_EVERY_MS) return false;
    this.#sweptAt = now;
    return true;
  }

  async release(buckets: readonly Bucket[], now: number): Promise<void> {
    const q = this.#q;
    await this.#run.transaction(function* () {
      for (const bucket of buckets) yield statement(q.giveBack, { key: bucket.key, now });
    });
  }

  async add(keys: readonly string[], windowMs: number, now: number): Promise<void> {
    // Plain counting decides nothing at once: it joins the store's group commit.
    await this.#store.groupCommit.add(
      ...keys.map((key) => statement(this.#q.add, { key, now, resetAt: now + windowMs }, `rate_limits:${key}`)),
    );
  }

  async read(keys: readonly string[], now: number): Promise<Counter[]> {
    const q = this.#q;
    const rows = new Map<string, { count: number; resetAt: number }>();
    if (this.#store.dialect === "postgres") {
      // One round trip for all the keys.
      for (const row of (await this.#run.one(statement(q.readMany, { keys: [...keys] }))).rows) {
        rows.set(String(row.key), { count: Number(row.count), resetAt: Number(row.reset_at) });
      }
    } else {
      // One statement for all the keys: one read of the file, no transaction of its own to begin and end.
      const values: Record<string, string> = {};
      keys.forEach((key, i) => {
        values[`k${i}`] = key;
      });
      for (const row of (await this.#run.one(statement(q.readSqlite(keys.length), values))).rows) {
        rows.set(String(row.key), { count: Number(row.count), resetAt: Number(row.reset_at) });
      }
    }
    return keys.map((key) => {
      const row = rows.get(key);
      return row === undefined || row.resetAt <= now ? { count: 0, resetAt: now } : row;
    });
  }

  async ping(): Promise<void> {
    await this.#store.ping();
  }

  async close(): Promise<void> {
    // The store is the service's own and closes with it.
  }
}

/**
 * One unit from each bucket in one statement (SQLite): the buckets that had room answer their key; when
 * one did not, BucketFull, which undoes the transaction and so the units the others gave.
 */
function* takeEach(q: ReturnType<typeof statements>, ordered: readonly Bucket[], now: number): Step<void> {
  if (ordered.length === 1) {
    const [bucket] = ordered as [Bucket];
    const taken = yield statement(q.take, { key: bucket.key, now, resetAt: now + bucket.windowMs, limit: bucket.limit });
    if (taken.rows.length === 0) throw yield* bucketFull(q, bucket, now);
    return;
  }
  const values: Record<string, string | number> = { now };
  ordered.forEach((bucket, i) => {
    values[`k${i}`] = bucket.key;
    values[`l${i}`] = bucket.limit;
    values[`r${i}`] = now + bucket.windowMs;
  });
  const taken = new Set((yield statement(q.takeAllSqlite(ordered.length), values)).rows.map((row) => String(row.key)));
  if (taken.size === ordered.length) return;
  throw yield* bucketFull(q, ordered.find((bucket) => !taken.has(bucket.key)) as Bucket, now);
}

/** The refusal for a full bucket: its rule, and how long until its window ends. */
function* bucketFull(q: ReturnType<typeof statements>, bucket: Bucket, now: number): Generator<Statement, BucketFull, Rows> {
  const [full] = (yield statement(q.read, { key: bucket.key })).rows;
  return new BucketFull(bucket.rule, Math.max(0, Number(full?.reset_at ?? now) - now));
}

function statements(store: KyselyStore) {
  const db = store.db;
  const takeAll = new Map<number, Prepared<Record<string, string | number>>>();
  const takeAllSqlite = new Map<number, Prepared<Record<string, string | number>>>();
  const readSqlite = new Map<number, Prepared<Record<string, string>>>();
  return {
    /**
     * PostgreSQL: one unit from each of `n` buckets in one statement, or none: the statement fails with
     * division_by_zero when a bucket is full (rows are taken in key order, the same every time: no deadlock).
     */
    takeAll(n: number): Prepared<Record<string, string | number>> {
      let query = takeAll.get(n);
      if (query === undefined) {
        query = prepare<Record<string, string | number>>((p) => ({
          compile: () =>
            sql`with input (key, lim, reset_at, ord) as (values ${sql.join(
              Array.from({ length: n }, (_, i) => sql`(${p[`k${i}`]}::text, ${p[`l${i}`]}::bigint, ${p[`r${i}`]}::bigint, ${sql.lit(i)})`),
            )}),
            taken as (
            insert into rate_limits (key, count, reset_at)
            select key, 1, reset_at from input order by ord
            on conflict (key) do update set
              count = case when rate_limits.reset_at <= ${p.now} then 1 else rate_limits.count + 1 end,
              reset_at = case when rate_limits.reset_at <= ${p.now} then excluded.reset_at else rate_limits.reset_at end
            where rate_limits.reset_at <= ${p.now} or rate_limits.count < (select lim from input where input.key = rate_limits.key)
            returning key
            )
            -- All or nothing: when a bucket was full, divide by zero, which aborts the statement and undoes it.
            select case when (select count(*) from taken) = ${sql.lit(n)} then 1
              else 1 / ((select count(*) from taken) - (select count(*) from taken)) end as taken`.compile(db),
        }));
        takeAll.set(n, query);
      }
      return query;
    },
    /**
     * SQLite: one unit from each of `n` buckets in one statement; answers the keys it took a unit from
     * (a full bucket is left as it is, and the caller undoes the rest). Each row is proposed with its
     * bucket's limit, which the conflict clause reads as `excluded.lim`.
     */
    takeAllSqlite(n: number): Prepared<Record<string, string | number>> {
      let query = takeAllSqlite.get(n);
      if (query === undefined) {
        query = prepare<Record<string, string | number>>((p) => ({
          compile: () =>
            sql`insert into rate_limits (key, count, reset_at, lim) values ${sql.join(
              Array.from({ length: n }, (_, i) => sql`(${p[`k${i}`]}, 1, ${p[`r${i}`]}, ${p[`l${i}`]})`),
            )}
            on conflict (key) do update set
              count = case when rate_limits.reset_at <= ${p.now} then 1 else rate_limits.count + 1 end,
              reset_at = case when rate_limits.reset_at <= ${p.now} then excluded.reset_at else rate_limits.reset_at end
            where rate_limits.reset_at <= ${p.now} or rate_limits.count < excluded.lim
            returning key`.compile(db),
        }));
        takeAllSqlite.set(n, query);
      }
      return query;
    },
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
    read: prepare<{ key: string }>((p) => db.selectFrom("rate_limits").select(["count", "reset_at"]).where("key", "=", p.key)),
    /** SQLite: `n` keys at once. */
    readSqlite(n: number): Prepared<Record<string, string>> {
      let query = readSqlite.get(n);
      if (query === undefined) {
        query = prepare<Record<string, string>>((p) =>
          db
            .selectFrom("rate_limits")
            .select(["key", "count", "reset_at"])
            .where(
              "key",
              "in",
              Array.from({ length: n }, (_, i) => p[`k${i}`] as string),
            ),
        );
        readSqlite.set(n, query);
      }
      return query;
    },
    /** PostgreSQL: many keys at once, bound as one array. */
    readMany: prepare<{ keys: string[] }>((p) => ({
      compile: () => sql`select key, count, reset_at from rate_limits where key = any(${p.keys}::text[])`.compile(db),
    })),
    sweep: prepare<{ now: number }>((p) => db.deleteFrom("rate_limits").where("reset_at", "<=", p.now)),
  };
}
