import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import type { Database } from "../../src/store/schema.js";
import { SqlStore } from "../../src/store/sql-store.js";

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

export interface TestDatabase {
  name: "sqlite" | "postgres";
  /** The DATABASE_URL of this database. */
  url: string;
  /** PostgreSQL only: the schema of this test database. */
  schema?: string;
  createStore(): Promise<SqlStore>;
  /** A connection of the test's own to the same database, to look at (or seed) its tables directly. */
  sql(): Kysely<Database>;
  drop(): Promise<void>;
}

/** A fresh SQLite file in a temporary folder. */
export function sqliteDatabase(): TestDatabase {
  const dir = mkdtempSync(join(tmpdir(), "vericode-test-"));
  const url = `sqlite:${join(dir, "test.db")}`;
  let raw: Kysely<Database> | null = null;
  return {
    name: "sqlite",
    url,
    sql() {
      raw ??= new Kysely<Database>({ dialect: new SqliteDialect({ database: new BetterSqlite3(join(dir, "test.db")) }) });
      return raw;
    },
    async createStore() {
      const store = new SqlStore({ kind: "sqlite", path: join(dir, "test.db") });
      await store.migrate();
      return store;
    },
    async drop() {
      await raw?.destroy();
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
  let raw: Kysely<Database> | null = null;
  return {
    name: "postgres",
    url,
    schema,
    sql() {
      raw ??= new Kysely<Database>({
        dialect: new PostgresDialect({
          pool: new pg.Pool({ connectionString: POSTGRES_URL, max: 2, options: `-c search_path=${schema}` }),
        }),
      });
      return raw;
    },
    async createStore() {
      const store = new SqlStore({ kind: "postgres", url: POSTGRES_URL }, { schema });
      await store.migrate();
      return store;
    },
    async drop() {
      await raw?.destroy();
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
