import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { testStore } from "./conformance/store.js";
import { DIALECTS } from "./support/databases.js";

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
