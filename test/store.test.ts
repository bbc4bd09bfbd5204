import BetterSqlite3 from "better-sqlite3";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { testStore } from "./conformance/store.js";
import { DIALECTS, sqliteDatabase } from "./support/databases.js";

for (const dialect of DIALECTS) {
  describe(`Store on ${dialect.name}`, () => {
    testStore(async () => {
      const db = await dialect.make();
      if (db === null) return null;
      const store = await db.createStore();
      return {
        store,
        cleanup: async () => {
          await store.close();
          await db.drop();
        },
      };
    });
  });
}

describe("Store.warnings", () => {
  it("on PostgreSQL names autovacuum exactly when it is off; on SQLite says nothing", async () => {
    for (const dialect of DIALECTS) {
      const db = await dialect.make();
      if (db === null) continue;
      const store = await db.createStore();
      try {
        const warnings = await store.warnings();
        if (dialect.name === "sqlite") {
          expect(warnings).toEqual([]);
          continue;
        }
        const { rows } = await sql<{ setting: string }>`select current_setting('autovacuum') as setting`.execute(db.sql());
        if (rows[0]?.setting === "off") expect(warnings).toEqual([expect.stringContaining("autovacuum is off")]);
        else expect(warnings).toEqual([]);
      } finally {
        await store.close();
        await db.drop();
      }
    }
  });
});

describe("SQLite's statistics", () => {
  it("keeps no STAT4 samples after a migration (SQLite would plan every statement again per bound value), and keeps sqlite_stat1", async () => {
    const db = sqliteDatabase();
    try {
      const first = await db.createStore();
      await first.close();
      const raw = new BetterSqlite3(db.url.slice("sqlite:".length));
      const insert = raw.prepare("insert into rate_limits (key, count, reset_at) values (?, ?, ?)");
      raw.transaction(() => {
        for (let i = 0; i < 2000; i++) insert.run(`number:+5068888${String(i).padStart(4, "0")}`, i % 7, 1_000 + i);
      })();
      raw.exec("analyze");
      const count = (table: string) => (raw.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
      expect(count("sqlite_stat4")).toBeGreaterThan(0);
      expect(count("sqlite_stat1")).toBeGreaterThan(0);

      const store = await db.createStore();
      try {
        expect(count("sqlite_stat4")).toBe(0);
        expect(count("sqlite_stat1")).toBeGreaterThan(0);
        // The rows and the lookups by key are as they were.
        const [counter] = await store.readCounters(["number:+50688881234"], 0);
        expect(counter).toEqual({ count: 1234 % 7, resetAt: 1_000 + 1234 });
      } finally {
        await store.close();
        raw.close();
      }
    } finally {
      await db.drop();
    }
  });
});
