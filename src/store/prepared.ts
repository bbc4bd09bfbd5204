import type BetterSqlite3 from "better-sqlite3";
import { type Compilable, CompiledQuery, type Kysely } from "kysely";

/**
 * The hot path's statements, built once with Kysely and run without rebuilding them.
 *
 * Kysely builds and compiles a query on every call, which costs more than SQLite takes to run it. A
 * `Prepared` query is compiled once with named slots for its values; a `Runner` binds the values and runs
 * it. Multi-statement steps are written once, as generators that yield statements and receive their rows,
 * and each runner drives them its own way: on SQLite synchronously inside one `BEGIN IMMEDIATE`
 * transaction (better-sqlite3 is synchronous, so nothing else can interleave), on PostgreSQL inside a
 * Kysely transaction.
 */
export interface Prepared<P> {
  readonly sql: string;
  /** Per compiled parameter: the name of the value to bind, or a constant Kysely put there. */
  readonly slots: readonly ({ readonly name: keyof P & string } | { readonly value: unknown })[];
  /** The statement returns rows (a SELECT or a RETURNING clause). */
  readonly returnsRows: boolean;
}

export interface Rows<R = Record<string, unknown>> {
  rows: R[];
  /** Rows changed by an INSERT, UPDATE or DELETE without RETURNING. */
  changes: number;
}

/** One statement of a step, with the values for its slots. */
export interface Statement {
  readonly query: Prepared<never>;
  readonly values: object;
  /** Group commit runs its statements in this order (the row they lock), so two batches never deadlock. */
  readonly lockKey?: string;
}

/** A step: yields statements, receives each one's rows, returns its result. */
export type Step<T> = Generator<Statement, T, Rows>;

export function statement<P extends object>(query: Prepared<P>, values: P, lockKey?: string): Statement {
  return { query: query as unknown as Prepared<never>, values, ...(lockKey === undefined ? {} : { lockKey }) };
}

const MARK = "\u0000slot:";

/**
 * Compiles `build`'s query once. `build` receives a stand-in for the values whose every property is a
 * marker; the markers come out of the compiler as parameters, which tells each parameter's name.
 */
export function prepare<P extends object>(build: (values: P) => Compilable): Prepared<P> {
  const markers = new Proxy({}, { get: (_target, name) => `${MARK}${String(name)}` }) as P;
  const compiled = build(markers).compile();
  const slots = compiled.parameters.map((value) =>
    typeof value === "string" && value.startsWith(MARK) ? { name: value.slice(MARK.length) as keyof P & string } : { value },
  );
  const head = compiled.sql.trimStart().slice(0, 6).toLowerCase();
  return { sql: compiled.sql, slots, returnsRows: head === "select" || /\breturning\b/i.test(compiled.sql) };
}

function bind(query: Prepared<never>, values: object): unknown[] {
  const source = values as Record<string, unknown>;
  return query.slots.map((slot) => {
    if (!("name" in slot)) return slot.value;
    const value = source[slot.name];
    if (value === undefined) throw new TypeError(`no value for ${slot.name} in: ${query.sql}`);
    return value;
  });
}

export interface Runner {
  /** Runs one statement on its own. */
  one<R = Record<string, unknown>>(query: Statement): Promise<Rows<R>>;
  /** Runs a step in one transaction: all of it or none of it. */
  transaction<T>(step: () => Step<T>): Promise<T>;
  /** Runs a step that only reads, in one consistent snapshot (no write lock on SQLite). */
  read<T>(step: () => Step<T>): Promise<T>;
}

/**
 * Group commit for writes nobody waits on to decide anything (delivery answers, counters): the statements
 * given within one turn of the event loop run in one transaction, and each caller resumes once its own
 * statements are committed. One commit instead of one per request.
 */
export class GroupCommit {
  readonly #runner: Runner;
  /** The batch being filled; it is written once the event loop turns and the batch before it is done. */
  #batch: { statements: Statement[]; done: Promise<void> } | null = null;
  /** The batch being written: one at a time, so batches never queue for each other's row locks. */
  #writing: Promise<void> = Promise.resolve();

  constructor(runner: Runner) {
    this.#runner = runner;
  }

  add(...statements: Statement[]): Promise<void> {
    let batch = this.#batch;
    if (batch === null) {
      const pending: Statement[] = [];
      const previous = this.#writing;
      const done = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => previous)
        .then(() => {
          this.#batch = null;
          // Every batch locks its rows in the same order: batches of other processes (PostgreSQL) wait
          // for each other instead of deadlocking.
          pending.sort((x, y) => ((x.lockKey ?? "") < (y.lockKey ?? "") ? -1 : (x.lockKey ?? "") > (y.lockKey ?? "") ? 1 : 0));
          return this.#runner.transaction(function* () {
            for (const next of pending) yield next;
          });
        });
      this.#writing = done.catch(() => {});
      batch = { statements: pending, done };
      this.#batch = batch;
    }
    batch.statements.push(...statements);
    return batch.done;
  }

  /** Resolves once every batch given so far is written (or has failed). */
  async settled(): Promise<void> {
    await this.#writing;
  }
}

/** SQLite: synchronous, each step one `BEGIN IMMEDIATE` transaction, prepared statements kept. */
export class SqliteRunner implements Runner {
  readonly #db: BetterSqlite3.Database;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();
  /** Steps waiting for this turn's commit. */
  #pending: { step: () => Step<unknown>; resolve: (value: unknown) => void; reject: (error: unknown) => void }[] = [];

  constructor(db: BetterSqlite3.Database) {
    this.#db = db;
  }

  async one<R>(query: Statement): Promise<Rows<R>> {
    return this.#run(query) as Rows<R>;
  }

  /**
   * Runs the step in a transaction of its own, but commits with the others of the same turn of the event
   * loop: the steps given while requests are being read run one after another, each in a savepoint (its
   * failure undoes it alone), inside one `BEGIN IMMEDIATE … COMMIT`. One WAL commit, and the pages they
   * share written once, instead of one per request; each caller resumes once the commit is done.
   */
  transaction<T>(step: () => Step<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ step, resolve: resolve as (value: unknown) => void, reject });
      if (this.#pending.length === 1) setImmediate(() => this.#commit());
    });
  }

  #commit(): void {
    const batch = this.#pending;
    this.#pending = [];
    let outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[];
    try {
      outcomes = this.#together(batch);
    } catch (error) {
      // The commit itself failed (the file locked past busy_timeout, a full disk): nothing was written.
      for (const { reject } of batch) reject(error);
      return;
    }
    for (const [i, { resolve, reject }] of batch.entries()) {
      const outcome = outcomes[i];
      if (outcome?.ok) resolve(outcome.value);
      else reject(outcome?.error);
    }
  }

  /**
   * Runs a batch in one `BEGIN IMMEDIATE … COMMIT`. First all steps straight through; if one throws (a
   * refusal that undoes its step), the whole attempt is rolled back and the batch runs again with each
   * step in a savepoint, so that only the failing ones are undone. Steps are generators over the
   * database's state, so running one again is running it for the first time.
   */
  #together(batch: { step: () => Step<unknown> }[]): ({ ok: true; value: unknown } | { ok: false; error: unknown })[] {
    const straight = this.#db.transaction(() => batch.map(({ step }) => ({ ok: true as const, value: this.#drive(step()) })));
    if (batch.length === 1) {
      try {
        return straight.immediate();
      } catch (error) {
        if (isBusy(error)) throw error;
        return [{ ok: false, error }];
      }
    }
    try {
      return straight.immediate();
    } catch (error) {
      if (isBusy(error)) throw error;
    }
    return this.#db
      .transaction(() =>
        batch.map(({ step }) => {
          try {
            // A nested better-sqlite3 transaction is a savepoint: released on success, rolled back on a throw.
            return { ok: true as const, value: this.#db.transaction(() => this.#drive(step()))() };
          } catch (error) {
            return { ok: false as const, error };
          }
        }),
      )
      .immediate();
  }

  async read<T>(step: () => Step<T>): Promise<T> {
    return this.#db.transaction(() => this.#drive(step())).deferred();
  }

  #drive<T>(steps: Step<T>): T {
    let next = steps.next();
    while (!next.done) next = steps.next(this.#run(next.value));
    return next.value;
  }

  #run({ query, values }: Statement): Rows {
    let prepared = this.#statements.get(query.sql);
    if (prepared === undefined) {
      prepared = this.#db.prepare(query.sql);
      this.#statements.set(query.sql, prepared);
    }
    const parameters = bind(query, values);
    if (query.returnsRows) return { rows: prepared.all(...parameters) as Record<string, unknown>[], changes: 0 };
    return { rows: [], changes: prepared.run(...parameters).changes };
  }
}

/** SQLite's "database is locked" (another process held the write lock past busy_timeout). */
function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY");
}

/** PostgreSQL (or any Kysely dialect): the compiled text run through Kysely's driver. */
export class KyselyRunner implements Runner {
  readonly #db: Kysely<unknown>;

  constructor(db: Kysely<unknown>) {
    this.#db = db;
  }

  async one<R>(query: Statement): Promise<Rows<R>> {
    return (await execute(this.#db, query)) as Rows<R>;
  }

  async read<T>(step: () => Step<T>): Promise<T> {
    return this.transaction(step);
  }

  async transaction<T>(step: () => Step<T>): Promise<T> {
    return this.#db.transaction().execute(async (trx) => {
      const steps = step();
      let next = steps.next();
      while (!next.done) next = steps.next(await execute(trx, next.value));
      return next.value;
    });
  }
}

async function execute(db: Kysely<unknown>, { query, values }: Statement): Promise<Rows> {
  const result = await db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(query.sql, bind(query, values)));
  return { rows: result.rows, changes: Number(result.numAffectedRows ?? 0n) };
}

/** A one-off statement from a built query (its values fixed), for steps that are not on the hot path. */
export function once(query: Compilable): Statement {
  const compiled = query.compile();
  const head = compiled.sql.trimStart().slice(0, 6).toLowerCase();
  const prepared: Prepared<never> = {
    sql: compiled.sql,
    slots: compiled.parameters.map((value) => ({ value })),
    returnsRows: head === "select" || /\breturning\b/i.test(compiled.sql),
  };
  return { query: prepared, values: {} };
}
