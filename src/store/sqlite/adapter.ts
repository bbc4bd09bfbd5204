import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import type { AdapterOptions, DialectAdapter, SendInput, TryParts } from "../adapter.js";
import { bucketValues, giveBackStep, inKeyOrder, perCount } from "../counter-statements.js";
import { GroupCommit, type Prepared, prepare, type Statement, type Step, statement } from "../prepared.js";
import type { Database } from "../schema.js";
import { countersOf, type SharedStatements, sharedStatements } from "../shared-statements.js";
import { openChallengeStep, storeCodeStep } from "../steps.js";
import type { Bucket, BudgetHold, Consumed, Counter, SendOpened, TryTake, VerifyTry } from "../store.js";
import { Checkpointer } from "./checkpointer.js";
import { LOCK_SPIN_MS, SqliteRunner, StatementCache } from "./runner.js";
import { type SqliteTryStatements, sqliteTryStatements, sqliteTryStep } from "./try-step.js";

/**
 * How long maintenance leaves the write lock free after each batch (a batch holds it a few milliseconds),
 * so that the service's writes, which retry every 1-8 ms, get their turn.
 */
const MAINTENANCE_PAUSE_MS = 10;

/** Expired windows are swept at most this often: the table stays about the size of the live windows. */
const SWEEP_EVERY_MS = 60_000;

type Limited = Extract<Consumed, { ok: false }>;

/**
 * Drops the samples an `ANALYZE` left in `sqlite_stat4`, and has the planner read the statistics again.
 * better-sqlite3 builds SQLite with SQLITE_ENABLE_STAT4, and with samples present SQLite plans a statement
 * again whenever a value bound against an indexed column changes: every statement of a send and a try,
 * every time. Measured on ten million codes after an `ANALYZE`: a try's read of its challenge and live
 * codes 25 µs a call instead of 5, a verify at 66 % of an empty database's rate (docs/benchmarks.md, "Flat
 * with size"). Every statement vericode runs looks up by key, with the same plan without samples;
 * `sqlite_stat1`'s row counts stay. Run when the database is migrated, before the service answers.
 */
function dropStat4Samples(sqlite: BetterSqlite3.Database): void {
  const stat4 = sqlite.prepare("select 1 from sqlite_schema where type = 'table' and name = 'sqlite_stat4'").get();
  if (stat4 === undefined || sqlite.prepare("select 1 from sqlite_stat4 limit 1").get() === undefined) return;
  sqlite.exec("delete from sqlite_stat4; analyze sqlite_schema");
}

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
  /** A /v2 start and check run one statement at a time: in process, a statement costs no round trip. */
  readonly verifyV2 = null;
  readonly #sqlite: BetterSqlite3.Database;
  readonly #own: ReturnType<typeof sqliteStatements>;
  readonly #try: SqliteTryStatements;
  readonly #checkpointer: Checkpointer | null = null;
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
    // Checkpoints run on a thread of their own, not inside a send's COMMIT (checkpointer.ts).
    if (path !== ":memory:") {
      sqlite.pragma("wal_autocheckpoint = 0");
      this.#checkpointer = new Checkpointer(path);
    }
    // One statement cache for the runner and for Kysely's own queries.
    const cache = new StatementCache(sqlite);
    this.db = new Kysely<Database>({
      dialect: new SqliteDialect({ database: { close: () => sqlite.close(), prepare: (text: string) => cache.get(text) } }),
    });
    this.runner = new SqliteRunner(sqlite, cache, options.lockWaitMs === undefined ? {} : { lockWaitMs: options.lockWaitMs });
    this.statements = sharedStatements(this.db);
    this.#own = sqliteStatements(this.db);
    this.#try = sqliteTryStatements(this.db);
    this.groupCommit = new GroupCommit(this.runner, countsFolder(this.statements.counters.add, this.#own.addMany));
  }

  /**
   * One transaction: the units, the budget's hold, then the challenge's conditional upsert, and the code.
   * When a bucket, the budget or the challenge refuses, what the transaction took before is given back
   * by the same transaction, so a refusal leaves nothing behind (no savepoint, no undo).
   */
  beginSend(input: SendInput): Promise<SendOpened> {
    const buckets = inKeyOrder(input.take.buckets ?? []);
    if (buckets.length > 0) this.#sweepIfDue(input.now);
    const units = new Units(this.#own, this.statements.counters, buckets, input.now);
    const budget = new BudgetSteps(this.statements.budget, input.take.budget ?? null, input.now);
    const { codes } = this.statements;
    return this.runner.transaction(() => sendStep(codes, units, budget, input));
  }

  async tryVerify(step: () => Step<VerifyTry>, take: TryTake, now: number, parts?: TryParts): Promise<VerifyTry> {
    const units = new Units(this.#own, this.statements.counters, inKeyOrder(take.buckets ?? []), now);
    // Given its parts, the try is SQLite's own (try-step.ts): the same outcomes in one statement fewer.
    const { codes } = this.statements;
    const own = this.#try;
    const tried = await this.runner.transaction(() =>
      tryWithUnits(units, parts === undefined ? step : () => sqliteTryStep(codes, own, parts, now)),
    );
    const counted = take.countOnVerified ?? null;
    if (tried.kind === "verified" && counted !== null) {
      // The breaker's counts of a verified code decide nothing at once: they join the turn's group commit,
      // which sums the turn's counts per key into one statement (countsFolder), as PostgreSQL's does.
      const { add } = this.statements.counters;
      await this.groupCommit.add(
        ...counted.keys.map((key) => statement(add, { key, now, resetAt: now + counted.windowMs }, `rate_limits:${key}`)),
      );
    }
    return tried;
  }

  withUnits<T>(buckets: readonly Bucket[], now: number, step: () => Step<T>): Promise<T | Limited> {
    // The /v2 API's starts and checks: the only takes of a service that uses nothing else.
    if (buckets.length > 0) this.#sweepIfDue(now);
    const units = new Units(this.#own, this.statements.counters, inKeyOrder(buckets), now);
    return this.runner.transaction(() => takeThen(units, step));
  }

  async takeUnits(buckets: readonly Bucket[], now: number): Promise<Consumed> {
    if (buckets.length === 0) return { ok: true };
    this.#sweepIfDue(now);
    const units = new Units(this.#own, this.statements.counters, inKeyOrder(buckets), now);
    return this.runner.transaction(() => takeStep(units));
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
      const result = await run(undefined);
      dropStat4Samples(this.#sqlite);
      return result;
    } finally {
      this.#sqlite.pragma(`busy_timeout = ${LOCK_SPIN_MS}`);
    }
  }

  async ping(): Promise<void> {
    this.runner.probeWrite();
  }

  async warnings(): Promise<string[]> {
    return [];
  }

  maintenancePauseMs(): number {
    return MAINTENANCE_PAUSE_MS;
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
    await this.#checkpointer?.close();
  }

  #sweepIfDue(now: number): void {
    if (now - this.#sweptAt < SWEEP_EVERY_MS) return;
    this.#sweptAt = now;
    void this.runner.one(statement(this.statements.counters.sweep, { now })).catch(() => {});
  }
}

// The steps below are generator functions declared once, at module level (or methods of a class), and a
// transaction is given an arrow that calls one. A generator function written inside a method (`function*
// () {…}`, or `*take() {…}` in an object literal) is a new closure on every call, and V8 gives each such
// closure a prototype object and a map of its own: measured, about 2 µs per closure, and garbage that
// outlives two scavenges (a map lives in the old generation), which grew the old space by some 2 KB per
// send.

/** A send's transaction (beginSend): units, budget hold, challenge, code; a refusal gives back what it took. */
function* sendStep(codes: SharedStatements["codes"], units: Units, budget: BudgetSteps, input: SendInput): Step<SendOpened> {
  const limited = yield* units.take();
  if (limited !== null) return { kind: "limited", rule: limited.rule, retryAfterMs: limited.retryAfterMs };
  if (!(yield* budget.reserve())) {
    yield* units.giveBack();
    return { kind: "over_budget" };
  }
  const opened = yield* openChallengeStep(codes, input.open);
  if (opened.kind === "refused") {
    yield* units.giveBack();
    yield* budget.release();
    return opened;
  }
  yield* storeCodeStep(codes, input, opened.sendCount);
  return opened;
}

/** A try's transaction (tryVerify): its units, then the try. */
function* tryWithUnits(units: Units, step: () => Step<VerifyTry>): Step<VerifyTry> {
  // The units a try takes stay taken whatever the try's outcome: they count tries, not successes.
  const limited = yield* units.take();
  if (limited !== null) return { kind: "limited", rule: limited.rule, retryAfterMs: limited.retryAfterMs };
  return yield* step();
}

/** Counters added to at most this many at a time: one compiled statement per count up to it. */
const ADD_MANY_MAX = 32;

/** Names of the values of an `n`-counter addMany: `k0`, `c0`, `r0`…, made once rather than per call. */
const ADD_NAMES = Array.from({ length: ADD_MANY_MAX }, (_, i) => [`k${i}`, `c${i}`, `r${i}`] as const);

/**
 * `count` units more on each counter (its window starting at `resetAt` when it has none running), as one
 * statement per ADD_MANY_MAX counters.
 */
function addManyStatements(
  addMany: ReturnType<typeof sqliteStatements>["addMany"],
  counters: readonly { key: string; count: number; resetAt: number }[],
  now: number,
): Statement[] {
  const statements: Statement[] = [];
  for (let at = 0; at < counters.length; at += ADD_MANY_MAX) {
    const some = counters.slice(at, at + ADD_MANY_MAX);
    const values: Record<string, string | number> = { now };
    some.forEach(({ key, count, resetAt }, i) => {
      const [k, c, r] = ADD_NAMES[i] as readonly [string, string, string];
      values[k] = key;
      values[c] = count;
      values[r] = resetAt;
    });
    statements.push(statement(addMany(some.length), values));
  }
  return statements;
}

/**
 * The group commit's fold on SQLite: the counts of one turn (`counters.add`, one unit each: the breaker's
 * tallies of sent codes) summed per key into `addMany` statements of up to ADD_MANY_MAX counters, as
 * PostgreSQL's fold does (the window is judged at the latest `now` of the turn). A turn of ten sends to
 * one country counted 20 statements; now one. Every other statement stays as it was, after them.
 */
function countsFolder(add: object, addMany: ReturnType<typeof sqliteStatements>["addMany"]) {
  return (pending: Statement[]): Statement[] => {
    const counters = new Map<string, { key: string; count: number; resetAt: number }>();
    const rest: Statement[] = [];
    let now = 0;
    for (const next of pending) {
      if (next.query !== add) {
        rest.push(next);
        continue;
      }
      const v = next.values as { key: string; now: number; resetAt: number };
      const counter = counters.get(v.key);
      if (counter === undefined) counters.set(v.key, { key: v.key, count: 1, resetAt: v.resetAt });
      else counter.count++;
      now = Math.max(now, v.now);
    }
    if (counters.size === 0) return rest;
    // In key order, as every write of rate_limits (counter-statements.ts, inKeyOrder).
    return [...addManyStatements(addMany, inKeyOrder([...counters.values()]), now), ...rest];
  };
}

/** `step` after the units (withUnits), declared once: a generator function made per call costs V8 a new map. */
function* takeThen<T>(units: Units, step: () => Step<T>): Step<T | Limited> {
  return (yield* units.take()) ?? (yield* step());
}

function* takeStep(units: Units): Step<Consumed> {
  return (yield* units.take()) ?? { ok: true };
}

/**
 * A send's or a try's units. `take` takes one unit from each bucket in one multi-row upsert, all or none:
 * a full bucket makes the statement fail on its NOT NULL count, and SQLite undoes that statement alone
 * (runner.ts); the buckets are then read to name the full one (the first in key order) with its wait.
 * `giveBack` returns them all (a later refusal).
 */
class Units {
  readonly #own: ReturnType<typeof sqliteStatements>;
  readonly #counters: SharedStatements["counters"];
  readonly #ordered: readonly Bucket[];
  readonly #now: number;

  constructor(own: ReturnType<typeof sqliteStatements>, counters: SharedStatements["counters"], ordered: readonly Bucket[], now: number) {
    this.#own = own;
    this.#counters = counters;
    this.#ordered = ordered;
    this.#now = now;
  }

  *take(): Step<Limited | null> {
    const ordered = this.#ordered;
    const now = this.#now;
    if (ordered.length === 0) return null;
    let refusal: unknown;
    try {
      yield statement(this.#own.takeAll(ordered.length), bucketValues(ordered, now));
      return null;
    } catch (error) {
      // Only the count's NOT NULL is a full bucket; any other failure (a window or limit that is not a
      // number binds as NULL too) stays the error it is.
      if (!isFullBucket(error)) throw error;
      refusal = error;
    }
    const values: Record<string, string> = {};
    for (let i = 0; i < ordered.length; i++) values[`k${i}`] = (ordered[i] as Bucket).key;
    const { rows } = yield statement(this.#own.readMany(ordered.length), values);
    const counters = new Map(rows.map((row) => [String(row.key), row]));
    for (const bucket of ordered) {
      const counter = counters.get(bucket.key);
      const resetAt = Number(counter?.reset_at ?? now);
      if (resetAt > now && Number(counter?.count ?? 0) >= bucket.limit) {
        return { ok: false, rule: bucket.rule, retryAfterMs: resetAt - now };
      }
    }
    throw new Error("the take of rate_limits failed on its count, yet no bucket is full", { cause: refusal });
  }

  giveBack(): Step<void> {
    return giveBackStep(
      this.#counters,
      this.#ordered.map((bucket) => bucket.key),
      this.#now,
    );
  }
}

/** The take's refusal: a NULL count (a full bucket's), refused by the column's NOT NULL. */
function isFullBucket(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return code === "SQLITE_CONSTRAINT_NOTNULL" && typeof message === "string" && message.endsWith("rate_limits.count");
}

/** The budget's hold: `reserve` unless it would pass the cap (nothing written then), `release` gives it back. */
class BudgetSteps {
  readonly #budget: SharedStatements["budget"];
  readonly #hold: BudgetHold | null;
  readonly #now: number;

  constructor(budget: SharedStatements["budget"], hold: BudgetHold | null, now: number) {
    this.#budget = budget;
    this.#hold = hold;
    this.#now = now;
  }

  *reserve(): Step<boolean> {
    const hold = this.#hold;
    if (hold === null) return true;
    if (hold.micros > hold.capMicros) return false;
    return (yield statement(this.#budget.reserve, { cap: hold.capMicros, now: this.#now, ...hold })).rows.length === 1;
  }

  *release(): Step<void> {
    const hold = this.#hold;
    if (hold === null) return;
    yield statement(this.#budget.settle, { period: hold.period, reserved: hold.micros, spent: 0, now: this.#now });
  }
}

function sqliteStatements(db: Kysely<Database>) {
  return {
    /**
     * One unit from each of `n` buckets in one statement, or none: a bucket that is full gets a NULL
     * count, which fails the statement on the column's NOT NULL, and SQLite undoes the whole statement
     * (Units.take). A window that has ended starts again. Each row is proposed with its bucket's limit,
     * read back as `excluded.lim`. No RETURNING: SQLite runs one through a temporary table and a
     * trigger per row, which measured twice the instructions of the six-bucket upsert without it.
     */
    takeAll: perCount(
      (n): Prepared<Record<string, string | number>> =>
        prepare<Record<string, string | number>>((p) => ({
          compile: () =>
            sql`insert into rate_limits (key, count, reset_at, lim) values ${sql.join(
              Array.from({ length: n }, (_, i) => sql`(${p[`k${i}`]}, 1, ${p[`r${i}`]}, ${p[`l${i}`]})`),
            )}
            on conflict (key) do update set
              count = case
                when rate_limits.reset_at <= ${p.now} then 1
                when rate_limits.count < excluded.lim then rate_limits.count + 1
              end,
              reset_at = case when rate_limits.reset_at <= ${p.now} then excluded.reset_at else rate_limits.reset_at end`.compile(db),
        })),
    ),
    /**
     * `c0`… units more on each of `n` counters (a counter without a limit: the breaker's tallies), in one
     * statement; a counter whose window has ended starts again from its units, as `counters.add` does.
     */
    addMany: perCount(
      (n): Prepared<Record<string, string | number>> =>
        prepare<Record<string, string | number>>((p) => ({
          compile: () =>
            sql`insert into rate_limits (key, count, reset_at) values ${sql.join(
              Array.from({ length: n }, (_, i) => sql`(${p[`k${i}`]}, ${p[`c${i}`]}, ${p[`r${i}`]})`),
            )}
            on conflict (key) do update set
              count = case when rate_limits.reset_at <= ${p.now} then excluded.count else rate_limits.count + excluded.count end,
              reset_at = case when rate_limits.reset_at <= ${p.now} then excluded.reset_at else rate_limits.reset_at end`.compile(db),
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
