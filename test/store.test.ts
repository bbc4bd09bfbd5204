import { describe } from "vitest";
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
