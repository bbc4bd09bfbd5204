import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { type Dialect, PostgresDialect, type SqliteDatabase, SqliteDialect } from "kysely";
import pg from "pg";
import type { DatabaseConfig } from "../config.js";

/**
 * The one place that knows SQLite from PostgreSQL: turns the configured database into a Kysely dialect
 * and answers the few questions whose answer differs (driver types, unique-violation errors).
 */
export interface DialectInfo {
  name: "sqlite" | "postgres";
  dialect: Dialect;
  /** SQLite: the connection itself, for the synchronous hot path (store/prepared.ts). */
  sqlite?: BetterSqlite3.Database;
}

export interface DialectOptions {
  /** PostgreSQL only: the schema to work in (tests give each run its own). */
  schema?: string;
  /** PostgreSQL only: connections in the pool. @default 10 */
  poolSize?: number;
}

const PG_INT8 = 20;

export function createDialect(database: DatabaseConfig, options: DialectOptions = {}): DialectInfo {
  if (database.kind === "sqlite") {
    if (database.path !== ":memory:") mkdirSync(dirname(database.path), { recursive: true });
    const db = new BetterSqlite3(database.path);
    // WAL lets readers proceed during a write; busy_timeout lets several processes share the file.
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("busy_timeout = 5000");
    db.pragma("foreign_keys = ON");
    return { name: "sqlite", dialect: new SqliteDialect({ database: withStatementCache(db) }), sqlite: db };
  }
  const pool = new pg.Pool({
    connectionString: database.url,
    max: options.poolSize ?? 20,
    connectionTimeoutMillis: 5000,
    ...(options.schema === undefined ? {} : { options: `-c search_path=${options.schema}` }),
    // BIGINT columns hold epoch milliseconds and counts: safe as JavaScript numbers.
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === PG_INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client's error (server restart) must not crash the process; the next query reports it.
  pool.on("error", () => {});
  return { name: "postgres", dialect: new PostgresDialect({ pool }) };
}

/** True when the error is a unique-constraint violation, on either driver; names the column when it can. */
export function uniqueViolation(error: unknown): { column: string | null } | null {
  if (typeof error !== "object" || error === null) return null;
  const { code, message, detail, constraint } = error as { code?: unknown; message?: unknown; detail?: unknown; constraint?: unknown };
  if (code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
    const match = typeof message === "string" ? /\.(\w+)$/.exec(message) : null;
    return { column: match?.[1] ?? null };
  }
  if (code === "23505") {
    const text = `${typeof constraint === "string" ? constraint : ""} ${typeof detail === "string" ? detail : ""}`;
    const match = /\((\w+)\)=/.exec(text) ?? /_(\w+)_key/.exec(text);
    return { column: match?.[1] ?? null };
  }
  return null;
}

/**
 * Kysely prepares every query anew; preparing costs as much as running a small statement. The queries
 * are a small fixed set, so their prepared statements are kept (Kysely runs one at a time per database).
 */
function withStatementCache(db: BetterSqlite3.Database): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => db.close(),
    prepare: (sql: string) => {
      let statement = statements.get(sql);
      if (statement === undefined) {
        statement = db.prepare(sql);
        if (statements.size < 256) statements.set(sql, statement);
      }
      return statement;
    },
  };
}
