import { type Compilable, CompiledQuery } from "kysely";

/**
 * The hot path's statements, built once with Kysely and run without rebuilding them. Private to store/.
 *
 * Kysely builds and compiles a query on every call, which costs more than SQLite takes to run it. A
 * `Prepared` query is compiled once with named slots for its values; a `Runner` binds the values and runs
 * it. Multi-statement work is written once, as a `Step`: a generator that yields statements, receives
 * their rows and returns its result. Each dialect's runner drives steps its own way (sqlite/runner.ts,
 * postgres/runner.ts). A step never throws for an expected outcome: a refusal is a value, and what the
 * step took before the refusal it gives back itself, in the same transaction. A runner never runs a step
 * twice.
 */
export interface Prepared<P> {
  readonly sql: string;
  /** Per compiled parameter: the name of the value to bind, or a constant Kysely put there. */
  readonly slots: readonly ({ readonly name: keyof P & string } | { readonly value: unknown })[];
  /** The statement returns rows (a SELECT or a RETURNING clause). */
  readonly returnsRows: boolean;
  /** The statement only reads (a plain SELECT): it needs no write lock. */
  readonly readOnly: boolean;
  /**
   * A name unique to this compiled statement (hot statements only; `once` has none): PostgreSQL parses and
   * plans a named statement once per connection instead of on every run.
   */
  readonly name?: string;
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
  return { sql: compiled.sql, slots, ...kind(compiled.sql), name: `vericode_${++prepared}` };
}

/** Statements compiled so far: each one's name is its number. */
let prepared = 0;

/** A one-off statement from a built query (its values fixed), for work that is not on the hot path. */
export function once(query: Compilable): Statement {
  const compiled = query.compile();
  const prepared: Prepared<never> = { sql: compiled.sql, slots: compiled.parameters.map((value) => ({ value })), ...kind(compiled.sql) };
  return { query: prepared, values: {} };
}

function kind(text: string): { returnsRows: boolean; readOnly: boolean } {
  const head = text.trimStart().slice(0, 6).toLowerCase();
  return { returnsRows: head === "select" || /\breturning\b/i.test(text), readOnly: head === "select" };
}

/** The statement's values in the order of its parameters. */
export function bind(query: Prepared<never>, values: object): unknown[] {
  const source = values as Record<string, unknown>;
  return query.slots.map((slot) => {
    if (!("name" in slot)) return slot.value;
    const value = source[slot.name];
    if (value === undefined) throw new TypeError(`no value for ${slot.name} in: ${query.sql}`);
    return value;
  });
}

/** The compiled text and bound values of a statement, for a Kysely driver. */
export function compiled({ query, values }: Statement): CompiledQuery {
  return CompiledQuery.raw(query.sql, bind(query, values));
}

export interface Runner {
  /** Runs one statement on its own (a write in a transaction of its own). */
  one<R = Record<string, unknown>>(query: Statement): Promise<Rows<R>>;
  /** Runs a step in one transaction: all of it, or none of it when it throws. */
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
  readonly #fold: ((statements: Statement[]) => Statement[]) | null;
  /** The batch being filled; it is written once the event loop turns and the batch before it is done. */
  #batch: { statements: Statement[]; done: Promise<void> } | null = null;
  /** The batch being written: one at a time, so batches never queue for each other's row locks. */
  #writing: Promise<void> = Promise.resolve();

  /**
   * `fold` may rewrite a batch into fewer statements that do the same (PostgreSQL: a round trip each); a
   * batch folded into one statement runs on its own, in autocommit.
   */
  constructor(runner: Runner, fold: ((statements: Statement[]) => Statement[]) | null = null) {
    this.#runner = runner;
    this.#fold = fold;
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
          const folded = this.#fold === null ? pending : this.#fold(pending);
          const [only] = folded;
          if (this.#fold !== null && folded.length === 1 && only !== undefined) return this.#runner.one(only).then(() => {});
          return this.#runner.transaction(() => each(folded));
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

/**
 * The statements, one after the other, as a step. Declared once: a generator function written inside a
 * method is a new closure per call, and V8 gives each one a map of its own (sqlite/adapter.ts).
 */
function* each(statements: readonly Statement[]): Step<void> {
  for (const next of statements) yield next;
}
