import { CompiledQuery, type Kysely } from "kysely";
import { compiled, type Rows, type Runner, type Statement, type Step } from "../prepared.js";

const BEGIN = CompiledQuery.raw("begin");
const COMMIT = CompiledQuery.raw("commit");
const ROLLBACK = CompiledQuery.raw("rollback");

/** PostgreSQL: each step in a transaction of its own on one pooled connection. */
export class PostgresRunner implements Runner {
  readonly #db: Kysely<unknown>;

  constructor(db: Kysely<unknown>) {
    this.#db = db;
  }

  async one<R = Record<string, unknown>>(query: Statement): Promise<Rows<R>> {
    const result = await this.#db.executeQuery<Record<string, unknown>>(compiled(query));
    return { rows: result.rows as R[], changes: Number(result.numAffectedRows ?? 0n) };
  }

  async read<T>(step: () => Step<T>): Promise<T> {
    return this.transaction(step);
  }

  async transaction<T>(step: () => Step<T>): Promise<T> {
    return this.#db.connection().execute(async (connection) => {
      await connection.executeQuery(BEGIN);
      try {
        const steps = step();
        let next = steps.next();
        while (!next.done) next = steps.next(await execute(connection, next.value));
        await connection.executeQuery(COMMIT);
        return next.value;
      } catch (error) {
        await connection.executeQuery(ROLLBACK).catch(() => {});
        throw error;
      }
    });
  }
}

async function execute(connection: Kysely<unknown>, query: Statement): Promise<Rows> {
  const result = await connection.executeQuery<Record<string, unknown>>(compiled(query));
  return { rows: result.rows, changes: Number(result.numAffectedRows ?? 0n) };
}
