import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { RedisLimiter } from "../src/limits/redis-limiter.js";
import { SqlLimiter } from "../src/limits/sql-limiter.js";
import { testLimiter } from "./conformance/limiter.js";
import { DIALECTS, sqliteDatabase } from "./support/databases.js";
import { REDIS_URL, redisAvailable, redisNamespace } from "./support/redis.js";

for (const dialect of DIALECTS) {
  describe(`SqlLimiter on ${dialect.name}`, () => {
    testLimiter(async () => {
      const db = await dialect.make();
      if (db === null) return null;
      const store = await db.createStore();
      return {
        limiter: new SqlLimiter(store),
        cleanup: async () => {
          await store.close();
          await db.drop();
        },
      };
    });
  });
}

describe("RedisLimiter", () => {
  testLimiter(async () => {
    if (!(await redisAvailable())) return null;
    const namespace = redisNamespace();
    const limiter = new RedisLimiter(REDIS_URL, { prefix: namespace.prefix });
    await limiter.ready();
    return {
      limiter,
      cleanup: async () => {
        await limiter.close();
        await namespace.drop();
      },
    };
  });
});

describe("SqlLimiter housekeeping", () => {
  it("sweeps ended windows at most once a minute, so the table keeps only live ones", async () => {
    const db = sqliteDatabase();
    const store = await db.createStore();
    const limiter = new SqlLimiter(store);
    const T0 = Date.UTC(2026, 0, 1);
    const rows = async () => Number((await sql<{ n: number }>`select count(*) as n from rate_limits`.execute(db.sql())).rows[0]?.n);
    try {
      await limiter.consume([{ key: "a", limit: 5, windowMs: 1000, rule: "test" }], T0);
      await limiter.consume([{ key: "b", limit: 5, windowMs: 1000, rule: "test" }], T0 + 30_000);
      expect(await rows()).toBe(2);
      // A minute after the last sweep (the first consume), the ended windows of a and b go.
      await limiter.consume([{ key: "c", limit: 5, windowMs: 1000, rule: "test" }], T0 + 60_000);
      expect(await rows()).toBe(1);
    } finally {
      await store.close();
      await db.drop();
    }
  });
});
