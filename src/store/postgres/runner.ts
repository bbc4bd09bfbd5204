import type pg from "pg";
import { bind, type Rows, type Runner, type Statement, type Step } from "../prepared.js";

/**
 * PostgreSQL: each statement on a pooled connection, each step in a transaction of its own on one. It
 * talks to `pg`'s pool directly rather than through Kysely's driver: a hot statement (one with a name,
 * see `prepare`) runs as a named prepared statement, parsed and planned once per connection instead of
 * on every run.
 */
export class PostgresRunner implements Runner {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async one<R = Record<string, unknown>>(query: Statement): Promise<Rows<R>> {
    return rowsOf(await this.#pool.query(queryConfig(query))) as Rows<R>;
  }

  async read<T>(step: () => Step<T>): Promise<T> {
    return this.transaction(step);
  }

  async transaction<T>(step: () => Step<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("begin");
      try {
        const steps = step();
        let next = steps.next();
        while (!next.done) next = steps.next(rowsOf(await client.query(queryConfig(next.value))));
        await client.query("commit");
        return next.value;
      } catch (error) {
        // A connection that cannot even roll back is not given back to the pool.
        await client.query("rollback").catch((cause: unknown) => {
          broken = cause instanceof Error ? cause : new Error(String(cause));
        });
        throw error;
      }
    } finally {
      client.release(broken);
    }
  }
}

function queryConfig({ query, values }: Statement): pg.QueryConfig {
  const bound = bind(query, values);
  return query.name === undefined ? { text: query.sql, values: bound } : { name: query.name, text: query.sql, values: bound };
}

/** Rows changed count for writes only, as Kysely's driver reports them. */
function rowsOf(result: pg.QueryResult): Rows {
  const write = result.command === "INSERT" || result.command === "UPDATE" || result.command === "DELETE" || result.command === "MERGE";
  return { rows: result.rows, changes: write ? (result.rowCount ?? 0) : 0 };
}
