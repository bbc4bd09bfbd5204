import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import { PostgresRunner } from "../../src/store/postgres/runner.js";
import type { Runner } from "../../src/store/prepared.js";
import type { Database } from "../../src/store/schema.js";
import { SqlStore } from "../../src/store/sql-store.js";
import { SqliteRunner, StatementCache } from "../../src/store/sqlite/runner.js";

/** PostgreSQL of the test machine (trust auth, database `test`); override with TEST_POSTGRES_URL. */
export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

let reachable: Promise<boolean> | undefined;

/** Whether PostgreSQL answers. Under CI it must: a missing database is then a failure, never a skip. */
export function postgresAvailable(): Promise<boolean> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
      await client.end();
      return true;
    } catch (error) {
      if (process.env.CI) throw new Error(`CI is set but PostgreSQL at ${POSTGRES_URL} is not reachable`, { cause: error });
      console.warn(`PostgreSQL at ${POSTGRES_URL} is not reachable: its tests are skipped (they never are when CI is set).`);
      return false;
    }
  })();
  return reachable;
}

/** A connection of a test's own to a database, beside the service's: Kysely, and a runner on the same connection. */
export interface RawDatabase {
  db: Kysely<Database>;
  /** The store's own kind of runner, for testing store/ modules that take one (report-store.ts). */
  runner: Runner;
  close(): Promise<void>;
}

/** Opens a connection of the test's own to a SQLite file, or to a PostgreSQL schema. */
export function openRaw(location: { kind: "sqlite"; path: string } | { kind: "postgres"; schema: string }): RawDatabase {
  if (location.kind === "sqlite") {
    const sqlite = new BetterSqlite3(location.path);
    sqlite.pragma("busy_timeout = 5000");
    const cache = new StatementCache(sqlite);
    const db = new Kysely<Database>({
      dialect: new SqliteDialect({ database: { close: () => sqlite.close(), prepare: (text: string) => cache.get(text) } }),
    });
    return { db, runner: new SqliteRunner(sqlite, cache), close: () => db.destroy() };
  }
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 2, options: `-c search_path=${location.schema}` });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, runner: new PostgresRunner(pool), close: () => db.destroy() };
}

export interface TestDatabase {
  name: "sqlite" | "postgres";
  /** The DATABASE_URL of this database. */
  url: string;
  /** PostgreSQL only: the schema of this test database. */
  schema?: string;
  createStore(): Promise<SqlStore>;
  /** A connection of the test's own to the same database, to look at (or seed) its tables directly. */
  sql(): Kysely<Database>;
  /** The same connection with a runner (see RawDatabase). */
  raw(): RawDatabase;
  /** Another connection of the test's own (the caller closes it). */
  connect(): RawDatabase;
  drop(): Promise<void>;
}

/** A fresh SQLite file in a temporary folder. */
export function sqliteDatabase(): TestDatabase {
  const dir = mkdtempSync(join(tmpdir(), "vericode-test-"));
  const url = `sqlite:${join(dir, "test.db")}`;
  let raw: RawDatabase | null = null;
  const location = { kind: "sqlite" as const, path: join(dir, "test.db") };
  return {
    name: "sqlite",
    url,
    raw() {
      raw ??= openRaw(location);
      return raw;
    },
    connect: () => openRaw(location),
    sql() {
      raw ??= openRaw(location);
      return raw.db;
    },
    async createStore() {
      const store = new SqlStore({ kind: "sqlite", path: join(dir, "test.db") });
      await store.migrate();
      return store;
    },
    async drop() {
      await raw?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh schema in the test PostgreSQL database, dropped afterwards. */
export async function postgresDatabase(): Promise<TestDatabase> {
  const schema = `vc_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  let raw: RawDatabase | null = null;
  const location = { kind: "postgres" as const, schema };
  return {
    name: "postgres",
    url,
    schema,
    raw() {
      raw ??= openRaw(location);
      return raw;
    },
    connect: () => openRaw(location),
    sql() {
      raw ??= openRaw(location);
      return raw.db;
    },
    async createStore() {
      const store = new SqlStore({ kind: "postgres", url: POSTGRES_URL }, { schema });
      await store.migrate();
      return store;
    },
    async drop() {
      await raw?.close();
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
    },
  };
}

/** Both dialects, for `describe.each`: PostgreSQL is skipped (with a warning) only outside CI. */
export const DIALECTS = [
  { name: "sqlite" as const, make: async (): Promise<TestDatabase | null> => sqliteDatabase() },
  {
    name: "postgres" as const,
    make: async (): Promise<TestDatabase | null> => ((await postgresAvailable()) ? postgresDatabase() : null),
  },
];
