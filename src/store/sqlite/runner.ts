import type BetterSqlite3 from "better-sqlite3";
import { bind, type Rows, type Runner, type Statement, type Step } from "../prepared.js";

/**
 * How long better-sqlite3 may wait, synchronously, for a lock another process holds. The wait blocks the
 * event loop, so it stays a few milliseconds; longer waits happen between turns of the event loop.
 */
export const LOCK_SPIN_MS = 2;
/** How long a write waits for another process's lock in all before it fails (503 service_unavailable). */
export const LOCK_WAIT_MS = 5000;

/** The database is locked by another process (a backup, `vericode purge`) past LOCK_WAIT_MS. */
export class DatabaseLocked extends Error {
  override readonly name = "DatabaseLocked";
}

/**
 * The prepared statements of one connection, by SQL text: preparing costs as much as running a small
 * statement, and the queries are a small fixed set. Shared by the runner and Kysely's driver.
 */
export class StatementCache {
  readonly #db: BetterSqlite3.Database;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();

  constructor(db: BetterSqlite3.Database) {
    this.#db = db;
  }

  get(sql: string): BetterSqlite3.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      // One-off queries (reports, purges with their own values) are not kept past a few hundred.
      if (this.#statements.size < 256) this.#statements.set(sql, statement);
    }
    return statement;
  }
}

interface Pending {
  step: () => Step<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** When the wait for another process's lock gives up. */
  deadline: number;
}

type Result = { ok: true; value: unknown } | { ok: false; error: unknown };

/**
 * SQLite: synchronous, so nothing interleaves with a transaction. The transactions given within one turn
 * of the event loop commit together: one `BEGIN IMMEDIATE … COMMIT`, each step run once, one after the
 * other. One WAL commit, and the pages they share written once, instead of one per request; each caller
 * resumes after the commit.
 *
 * A step that throws before it wrote anything (a failed statement undoes itself) fails alone. One that
 * throws after writing cannot be undone alone without a savepoint per step, which costs every step a copy
 * of each page it touches: then the batch rolls back, the steps that ran fail with it and those that had
 * not run yet wait for the next batch. Steps never
 * throw for an expected outcome (prepared.ts), so that is a broken database or a bug, not a refusal.
 *
 * When another process holds the write lock, the batch waits between turns of the event loop (the
 * service keeps answering) and gives up with DatabaseLocked after LOCK_WAIT_MS.
 */
export class SqliteRunner implements Runner {
  readonly #db: BetterSqlite3.Database;
  readonly #cache: StatementCache;
  readonly #lockWaitMs: number;
  readonly #control: Record<"begin" | "commit" | "rollback", BetterSqlite3.Statement>;
  #pending: Pending[] = [];
  #scheduled = false;
  /** The pause before the next try for the lock; doubles while the lock stays taken. */
  #backoffMs = 1;

  constructor(db: BetterSqlite3.Database, cache: StatementCache, options: { lockWaitMs?: number } = {}) {
    this.#db = db;
    this.#cache = cache;
    this.#lockWaitMs = options.lockWaitMs ?? LOCK_WAIT_MS;
    this.#control = {
      begin: db.prepare("BEGIN IMMEDIATE"),
      commit: db.prepare("COMMIT"),
      rollback: db.prepare("ROLLBACK"),
    };
  }

  async one<R = Record<string, unknown>>(query: Statement): Promise<Rows<R>> {
    // A read needs no lock (WAL); a write joins this turn's commit.
    if (query.query.readOnly) return this.#run(query) as Rows<R>;
    return this.transaction(() => only(query)) as Promise<Rows<R>>;
  }

  transaction<T>(step: () => Step<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ step, resolve: resolve as (value: unknown) => void, reject, deadline: Date.now() + this.#lockWaitMs });
      this.#schedule(0);
    });
  }

  async read<T>(step: () => Step<T>): Promise<T> {
    return this.#db.transaction(() => this.#drive(step()).value).deferred();
  }

  /** Throws unless the write lock can be taken now (readiness: a locked database cannot take sends). */
  probeWrite(): void {
    if (this.#db.inTransaction) return;
    this.#control.begin.run();
    this.#control.rollback.run();
  }

  #schedule(delayMs: number): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      this.#commit();
    };
    if (delayMs === 0) setImmediate(run);
    else setTimeout(run, delayMs);
  }

  #commit(): void {
    if (this.#pending.length === 0) return;
    if (!this.#begin()) return;
    const batch = this.#pending;
    this.#pending = [];
    const results: Result[] = [];
    for (const [i, pending] of batch.entries()) {
      const ran = this.#step(pending);
      results.push(ran.result);
      if (ran.wrote && !ran.result.ok) {
        // The steps that never ran wait for the next batch; those that ran are lost with this one.
        this.#pending = [...batch.slice(i + 1), ...this.#pending];
        this.#abandon(batch.slice(0, i + 1), ran.result.error, pending);
        if (this.#pending.length > 0) this.#schedule(0);
        return;
      }
    }
    try {
      this.#control.commit.run();
    } catch (error) {
      // The commit itself failed (a full disk): nothing was written.
      this.#abandon(batch, error);
      return;
    }
    for (const [i, { resolve, reject }] of batch.entries()) {
      const result = results[i] as Result;
      if (result.ok) resolve(result.value);
      else reject(result.error);
    }
  }

  /** Runs one step; says whether it wrote anything before it failed. */
  #step(pending: Pending): { result: Result; wrote: boolean } {
    const steps = pending.step();
    let wrote = false;
    try {
      let next = steps.next();
      while (!next.done) {
        let rows: Rows;
        try {
          rows = this.#run(next.value);
        } catch (error) {
          // SQLite rolled the whole transaction back (a full disk, an I/O error): the batch is lost, and
          // the step does not go on outside it.
          if (!this.#db.inTransaction) {
            wrote = true;
            throw error;
          }
          // Thrown into the step at its `yield` (see #run); a step that does not catch it fails here.
          next = steps.throw(error);
          continue;
        }
        wrote ||= !next.value.query.readOnly;
        next = steps.next(rows);
      }
      return { result: { ok: true, value: next.value }, wrote };
    } catch (error) {
      return { result: { ok: false, error }, wrote };
    }
  }

  /** Rolls the batch back: a step failed after writing (or the commit failed); every step in it fails. */
  #abandon(batch: Pending[], error: unknown, failed: Pending | null = null): void {
    if (this.#db.inTransaction) this.#control.rollback.run();
    const lost = new Error("the transaction was rolled back with the others of its batch", { cause: error });
    for (const pending of batch) pending.reject(pending === failed ? error : lost);
  }

  /** Takes the write lock; when another process holds it, tries again later and fails the overdue. */
  #begin(): boolean {
    try {
      this.#control.begin.run();
      this.#backoffMs = 1;
      return true;
    } catch (error) {
      if (!isBusy(error)) {
        const batch = this.#pending;
        this.#pending = [];
        for (const { reject } of batch) reject(error);
        return false;
      }
    }
    const now = Date.now();
    const overdue = this.#pending.filter((pending) => pending.deadline <= now);
    this.#pending = this.#pending.filter((pending) => pending.deadline > now);
    const locked = new DatabaseLocked(`the database is locked by another process (waited ${this.#lockWaitMs} ms)`);
    for (const { reject } of overdue) reject(locked);
    // Short pauses: maintenance leaves gaps of 10 ms or more between its batches, and a try costs little.
    this.#backoffMs = Math.min(this.#backoffMs * 2, 8);
    if (this.#pending.length > 0) this.#schedule(this.#backoffMs);
    return false;
  }

  #drive<T>(steps: Step<T>): { value: T } {
    let next = steps.next();
    while (!next.done) {
      let rows: Rows;
      try {
        rows = this.#run(next.value);
      } catch (error) {
        if (!this.#db.inTransaction) throw error;
        next = steps.throw(error);
        continue;
      }
      next = steps.next(rows);
    }
    return { value: next.value };
  }

  /**
   * Runs one statement of a step. Its error is thrown into the step at its `yield`, where the step may
   * catch it: a statement that fails on a constraint (SQLite's default resolution, ABORT) is undone alone
   * and the transaction goes on, which is how the multi-bucket take refuses (adapter.ts, Units). A step
   * that does not catch it fails as before.
   */
  #run({ query, values }: Statement): Rows {
    const prepared = this.#cache.get(query.sql);
    const parameters = bind(query, values);
    if (query.returnsRows) return { rows: prepared.all(...parameters) as Record<string, unknown>[], changes: 0 };
    return { rows: [], changes: prepared.run(...parameters).changes };
  }
}

/** A transaction of one statement (declared once: a generator function made per call costs a map; adapter.ts). */
function* only(query: Statement): Step<Rows> {
  return yield query;
}

/** SQLite's "database is locked" (another process holds the write lock). */
export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}
