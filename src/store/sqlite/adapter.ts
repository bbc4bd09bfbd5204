import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import type { AdapterOptions, DialectAdapter, SendInput } from "../adapter.js";
import { bucketValues, type CounterStatements, inKeyOrder, perCount } from "../counter-statements.js";
import { GroupCommit, type Prepared, prepare, type Rows, type Statement, type Step, statement, undo } from "../prepared.js";
import type { Database } from "../schema.js";
import { countersOf, type SharedStatements, sharedStatements } from "../shared-statements.js";
import { openSendStep } from "../steps.js";
import type { Bucket, Consumed, Counter, SendOpened, TryTake, VerifyTry } from "../store.js";
import { LOCK_SPIN_MS, SqliteRunner, StatementCache } from "./runner.js";

/** Expired windows are swept at most this often: the table stays about the size of the live windows. */
const SWEEP_EVERY_MS = 60_000;

type Limited = Extract<Consumed, { ok: false }>;

/**
 * SQLite through better-sqlite3, in the process: a send's buckets, budget hold, challenge and code are
 * one transaction (and that transaction commits with the others of its event-loop turn: sqlite/runner.ts).
 */
export class SqliteAdapter implements DialectAdapter {
  readonly name = "sqlite";
  readonly db: Kysely<Database>;
  readonly runner: SqliteRunner;
  readonly groupCommit: GroupCommit;
  readonly statements: SharedStatements;
  readonly #sqlite: BetterSqlite3.Database;
  readonly #own: ReturnType<typeof sqliteStatements>;
  #sweptAt = 0;

  constructor(path: string, options: AdapterOptions = {}) {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const sqlite = new BetterSqlite3(path);
    // WAL lets readers proceed during a write. A lock held by another process is waited for between turns
    // of the event loop (runner.ts), so better-sqlite3's own, blocking, wait stays a few milliseconds.
    sqlite.pragma("journal_mode = WAL");
    sqlite.pragma("synchronous = NORMAL");
    sqlite.pragma(`busy_timeout = ${LOCK_SPIN_MS}`);
    sqlite.pragma("foreign_keys = ON");
    this.#sqlite = sqlite;
    // One statement cache for the runner and for Kysely's own queries.
    const cache = new StatementCache(sqlite);
    this.db = new Kysely<Database>({
      dialect: new SqliteDialect({ database: { close: () => sqlite.close(), prepare: (text: string) => cache.get(text) } }),
    });
    this.runner = new SqliteRunner(sqlite, cache, options.lockWaitMs === undefined ? {} : { lockWaitMs: options.lockWaitMs });
    this.groupCommit = new GroupCommit(this.runner);
    this.statements = sharedStatements(this.db);
    this.#own = sqliteStatements(this.db);
  }

  beginSend(input: SendInput): Promise<SendOpened> {
    const { codes, budget } = this.statements;
    const buckets = inKeyOrder(input.take.buckets ?? []);
    const hold = input.take.budget ?? null;
    if (buckets.length > 0) this.#sweepIfDue(input.now);
    const take = this.#takeStep(buckets, input.now);
    return this.runner.transaction(function* (): Step<SendOpened> {
      const limited = yield* take();
      if (limited !== null) return undo({ kind: "limited", rule: limited.rule, retryAfterMs: limited.retryAfterMs });
      if (hold !== null) {
        const reserved =
          hold.micros <= hold.capMicros &&
          (yield statement(budget.reserve, { ...hold, cap: hold.capMicros, now: input.now })).rows.length === 1;
        if (!reserved) return undo({ kind: "over_budget" });
      }
      return yield* openSendStep(codes, input);
    });
  }

  tryVerify(step: () => Generator<Statement, VerifyTry, Rows>, take: TryTake, now: number): Promise<VerifyTry> {
    const { counters } = this.statements;
    const buckets = inKeyOrder(take.buckets ?? []);
    const counts = take.countOnVerified ?? null;
    const takeUnits = this.#takeStep(buckets, now);
    return this.runner.transaction(function* (): Step<VerifyTry> {
      // The units a try takes stay taken whatever the try's outcome: they count tries, not successes.
      const limited = yield* takeUnits();
      if (limited !== null) return undo({ kind: "limited", rule: limited.rule, retryAfterMs: limited.retryAfterMs });
      const tried = yield* step();
      if (tried.kind === "verified" && counts !== null) {
        for (const key of counts.keys) yield statement(counters.add, { key, now, resetAt: now + counts.windowMs });
      }
      return tried;
    });
  }

  async takeUnits(buckets: readonly Bucket[], now: number): Promise<Consumed> {
    if (buckets.length === 0) return { ok: true };
    this.#sweepIfDue(now);
    const take = this.#takeStep(inKeyOrder(buckets), now);
    return this.runner.transaction(function* (): Step<Consumed> {
      const limited = yield* take();
      return limited === null ? { ok: true } : undo(limited);
    });
  }

  async readCounters(keys: readonly string[], now: number): Promise<Counter[]> {
    const values: Record<string, string> = {};
    keys.forEach((key, i) => {
      values[`k${i}`] = key;
    });
    return countersOf(keys, (await this.runner.one(statement(this.#own.readMany(keys.length), values))).rows, now);
  }

  async migrating<T>(run: (schema: string | undefined) => Promise<T>): Promise<T> {
    // Before the service answers anything, a lock held elsewhere is simply waited for.
    this.#sqlite.pragma("busy_timeout = 5000");
    try {
      return await run(undefined);
    } finally {
      this.#sqlite.pragma(`busy_timeout = ${LOCK_SPIN_MS}`);
    }
  }

  async ping(): Promise<void> {
    this.runner.probeWrite();
  }

  uniqueViolation(error: unknown): { column: string | null } | null {
    const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
    if (code !== "SQLITE_CONSTRAINT_UNIQUE" && code !== "SQLITE_CONSTRAINT_PRIMARYKEY") return null;
    const match = typeof message === "string" ? /\.(\w+)$/.exec(message) : null;
    return { column: match?.[1] ?? null };
  }

  async close(): Promise<void> {
    await this.groupCommit.settled();
    await this.db.destroy();
  }

  /**
   * One unit from each bucket in one statement: the buckets that had room answer their key; when one did
   * not, the step says which and until when (its caller undoes the units the others gave).
   */
  #takeStep(ordered: readonly Bucket[], now: number): () => Generator<Statement, Limited | null, Rows> {
    const { counters } = this.statements;
    const own = this.#own;
    return function* () {
      if (ordered.length === 0) return null;
      const taken = new Set((yield statement(own.takeAll(ordered.length), bucketValues(ordered, now))).rows.map((row) => String(row.key)));
      const full = ordered.find((bucket) => !taken.has(bucket.key));
      if (full === undefined) return null;
      return yield* fullBucket(counters, full, now);
    };
  }

  #sweepIfDue(now: number): void {
    if (now - this.#sweptAt < SWEEP_EVERY_MS) return;
    this.#sweptAt = now;
    void this.runner.one(statement(this.statements.counters.sweep, { now })).catch(() => {});
  }
}

/** A full bucket's refusal: its rule, and how long until its window ends. */
function* fullBucket(counters: CounterStatements, bucket: Bucket, now: number): Generator<Statement, Limited, Rows> {
  const [row] = (yield statement(counters.read, { key: bucket.key })).rows;
  return { ok: false, rule: bucket.rule, retryAfterMs: Math.max(0, Number(row?.reset_at ?? now) - now) };
}

function sqliteStatements(db: Kysely<Database>) {
  return {
    /**
     * One unit from each of `n` buckets in one statement; answers the keys it took a unit from (a full
     * bucket is left as it is). Each row is proposed with its bucket's limit, read back as `excluded.lim`.
     */
    takeAll: perCount(
      (n): Prepared<Record<string, string | number>> =>
        prepare<Record<string, string | number>>((p) => ({
          compile: () =>
            sql`insert into rate_limits (key, count, reset_at, lim) values ${sql.join(
              Array.from({ length: n }, (_, i) => sql`(${p[`k${i}`]}, 1, ${p[`r${i}`]}, ${p[`l${i}`]})`),
            )}
            on conflict (key) do update set
              count = case when rate_limits.reset_at <= ${p.now} then 1 else rate_limits.count + 1 end,
              reset_at = case when rate_limits.reset_at <= ${p.now} then excluded.reset_at else rate_limits.reset_at end
            where rate_limits.reset_at <= ${p.now} or rate_limits.count < excluded.lim
            returning key`.compile(db),
        })),
    ),
    /** `n` keys in one statement: one read of the file, no transaction of its own. */
    readMany: perCount(
      (n): Prepared<Record<string, string>> =>
        prepare<Record<string, string>>((p) =>
          db
            .selectFrom("rate_limits")
            .select(["key", "count", "reset_at"])
            .where(
              "key",
              "in",
              Array.from({ length: n }, (_, i) => p[`k${i}`] as string),
            ),
        ),
    ),
  };
}
