import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";

/** Redis of the test machine; override with TEST_REDIS_URL. */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

let reachable: Promise<boolean> | undefined;

/** Whether Redis answers. Under CI it must: a missing Redis is then a failure, never a skip. */
export function redisAvailable(): Promise<boolean> {
  reachable ??= (async () => {
    const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    redis.on("error", () => {});
    try {
      await redis.connect();
      await redis.ping();
      return true;
    } catch (error) {
      if (process.env.CI) throw new Error(`CI is set but Redis at ${REDIS_URL} is not reachable`, { cause: error });
      console.warn(`Redis at ${REDIS_URL} is not reachable: its tests are skipped (they never are when CI is set).`);
      return false;
    } finally {
      redis.disconnect();
    }
  })();
  return reachable;
}

/** A key prefix of its own for one test run, and a way to delete what it wrote. */
export function redisNamespace(): { prefix: string; drop: () => Promise<void> } {
  const prefix = `vericode-test:${randomBytes(6).toString("hex")}:`;
  return {
    prefix,
    async drop() {
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    },
  };
}
