import { describe } from "vitest";
import { RedisLimiter } from "../src/limits/redis-limiter.js";
import { SqlLimiter } from "../src/limits/sql-limiter.js";
import { testLimiter } from "./conformance/limiter.js";
import { DIALECTS } from "./support/databases.js";
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
