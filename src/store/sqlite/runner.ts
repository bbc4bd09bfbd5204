import type BetterSqlite3 from "better-sqlite3";
import { bind, outcome, type Rows, type Runner, type Statement, type Step, type Undone } from "../prepared.js";

/**
 * How long better-sqlite3 may wait, synchronously, for a lock another process holds. The wait blocks the
 * event loop, so it stays a few milliseconds; longer waits happen between turns of the event loop.
 */
export const LOCK_SPIN_MS = 5;
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

type Result = { ok: true; value: unknown; undone: boolean } | { ok: false; error: unknown };

/**
 * SQLite: synchronous, so nothing interleaves with a transaction. The transactions given within one turn
 * of the event loop commit together: one `BEGIN IMMEDIATE … COMMIT`, each step in a savepoint of its own
 * (its failure or its `undo` rolls back that step alone), each step run exactly once. One WAL commit, and
 * the pages they share written once, instead of one per request; each caller resumes after the commit.
 *
 * When another process holds the write lock, the batch waits between turns of the event loop (the
 * service keeps answering) and gives up with DatabaseLocked after LOCK_WAIT_MS.
 */
export class SqliteRunner implements Runner {
  readonly #db: BetterSqlite3.Database;
  readonly #cache: StatementCache;
  readonly #lockWaitMs: number;
  readonly #control: Record<"begin" | "commit" | "rollback" | "savepoint" | "release" | "rollbackTo", BetterSqlite3.Statement>;
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
      savepoint: db.prepare("SAVEPOINT step"),
      release: db.prepare("RELEASE step"),
      rollbackTo: db.prepare("ROLLBACK TO step"),
    };
  }

  async one<R = Record<string, unknown>>(query: Statement): Promise<Rows<R>> {
    // A read needs no lock (WAL); a write joins this turn's commit.
    if (query.query.readOnly) return this.#run(query) as Rows<R>;
    return this.transaction(function* (): Step<Rows> {
      return yield query;
    }) as Promise<Rows<R>>;
  }

  transaction<T>(step: () => Step<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ step, resolve: resolve as (value: unknown) => void, reject, deadline: Date.now() + this.#lockWaitMs });
      this.#schedule(0);
    });
  }

  async read<T>(step: () => Step<T>): Promise<T> {
    return this.#db.transaction(() => outcome(this.#drive(step())).result).deferred();
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
    let results = batch.length === 1 ? [this.#alone(batch[0] as Pending)] : batch.map((pending) => this.#inSavepoint(pending));
    if (batch.length > 1 && !this.#db.inTransaction) {
      // A failure that ended the whole transaction took the steps before it along.
      const failure = results.find((result) => !result.ok) as { ok: false; error: unknown };
      results = results.map((result) => (result.ok ? failure : result));
    }
    if (this.#db.inTransaction) {
      try {
        this.#control.commit.run();
      } catch (error) {
        // The commit itself failed (a full disk): nothing was written.
        if (this.#db.inTransaction) this.#control.rollback.run();
        for (const { reject } of batch) reject(error);
        return;
      }
    }
    for (const [i, { resolve, reject }] of batch.entries()) {
      const result = results[i] as Result;
      if (result.ok) resolve(result.value);
      else reject(result.error);
    }
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
    this.#backoffMs = Math.min(this.#backoffMs * 2, 50);
    if (this.#pending.length > 0) this.#schedule(this.#backoffMs);
    return false;
  }

  /** A batch of one: the transaction is the step's own, so an undo or a failure rolls it all back. */
  #alone(pending: Pending): Result {
    try {
      const { result, undone } = outcome(this.#drive(pending.step()));
      if (undone) this.#control.rollback.run();
      return { ok: true, value: result, undone };
    } catch (error) {
      if (this.#db.inTransaction) this.#control.rollback.run();
      return { ok: false, error };
    }
  }

  #inSavepoint(pending: Pending): Result {
    if (!this.#db.inTransaction) return { ok: false, error: new Error("the transaction was rolled back by an earlier failure") };
    this.#control.savepoint.run();
    try {
      const { result, undone } = outcome(this.#drive(pending.step()));
      if (undone) this.#control.rollbackTo.run();
      this.#control.release.run();
      return { ok: true, value: result, undone };
    } catch (error) {
      // Some failures (a full disk) end the whole transaction; the others undo this step alone.
      if (this.#db.inTransaction) {
        this.#control.rollbackTo.run();
        this.#control.release.run();
      }
      return { ok: false, error };
    }
  }

  #drive<T>(steps: Step<T>): T | Undone<T> {
    let next = steps.next();
    while (!next.done) next = steps.next(this.#run(next.value));
    return next.value;
  }

  #run({ query, values }: Statement): Rows {
    const prepared = this.#cache.get(query.sql);
    const parameters = bind(query, values);
    if (query.returnsRows) return { rows: prepared.all(...parameters) as Record<string, unknown>[], changes: 0 };
    return { rows: [], changes: prepared.run(...parameters).changes };
  }
}

/** SQLite's "database is locked" (another process holds the write lock). */
export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}
