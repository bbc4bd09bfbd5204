import { Redis } from "ioredis";
import type { Bucket, Consumed, Counter, Limiter } from "./limiter.js";

// Each counter is a hash {c: count, r: reset at (epoch ms)}. Times come from the caller's clock, never
// from Redis's, so that the same rules hold on SQL and Redis and tests can move time; Redis's own expiry
// only collects ended windows (a minute after their end).
const KEEP_AFTER_END_MS = 60_000;

/** One more in the counter `key`, or 1 in a new window of `window` ms when its window has ended. */
const COUNT_ONE = `
  local r = tonumber(redis.call('HGET', key, 'r'))
  if r and r > now then
    redis.call('HINCRBY', key, 'c', 1)
  else
    r = now + window
    redis.call('HSET', key, 'c', 1, 'r', r)
  end
  redis.call('PEXPIRE', key, r - now + ${KEEP_AFTER_END_MS})`;

/** KEYS: buckets; ARGV: now, then limit and window per bucket. Answers {0} or {index of the full bucket, ms left}. */
const CONSUME = `
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'c', 'r')
  local c, r = tonumber(v[1]), tonumber(v[2])
  if c and r and r > now and c >= tonumber(ARGV[2 * i]) then return {i, r - now} end
end
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i + 1])${COUNT_ONE}
end
return {0, 0}`;

/** KEYS: counters; ARGV: now. */
const RELEASE = `
local now = tonumber(ARGV[1])
for _, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'c', 'r')
  local c, r = tonumber(v[1]), tonumber(v[2])
  if c and r and r > now and c > 0 then redis.call('HINCRBY', key, 'c', -1) end
end
return 0`;

/** KEYS: counters; ARGV: now, window. */
const ADD = `
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
for _, key in ipairs(KEYS) do${COUNT_ONE}
end
return 0`;

interface Scripts {
  vcConsume(...args: (string | number)[]): Promise<[number, number]>;
  vcRelease(...args: (string | number)[]): Promise<number>;
  vcAdd(...args: (string | number)[]): Promise<number>;
}

/**
 * The limiter on Redis (`REDIS_URL`): each operation one Lua script, atomic in Redis. The keys of one call
 * are used together, so on a Redis Cluster they would need a common hash tag; vericode expects a single
 * Redis (or a primary with replicas).
 */
export class RedisLimiter implements Limiter {
  readonly name = "redis";
  readonly store = null;
  readonly #redis: Redis & Scripts;
  readonly #prefix: string;

  constructor(url: string, options: { prefix?: string } = {}) {
    const redis = new Redis(url, {
      // Fail fast instead of queueing while Redis is away: a send must fail closed, not wait.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: 2000,
      lazyConnect: false,
    });
    // Connection errors surface on the commands that fail; the client reconnects by itself.
    redis.on("error", () => {});
    redis.defineCommand("vcConsume", { lua: CONSUME });
    redis.defineCommand("vcRelease", { lua: RELEASE });
    redis.defineCommand("vcAdd", { lua: ADD });
    this.#redis = redis as Redis & Scripts;
    this.#prefix = options.prefix ?? "vericode:rl:";
  }

  /** Resolves once connected (or rejects after the connect timeout). */
  async ready(): Promise<void> {
    if (this.#redis.status === "ready") return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error("Redis did not answer in 2 s"));
      }, 2000);
      const onReady = () => {
        cleanup();
        resolve();
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.#redis.off("ready", onReady);
      };
      this.#redis.on("ready", onReady);
    });
  }

  async consume(buckets: readonly Bucket[], now: number): Promise<Consumed> {
    if (buckets.length === 0) return { ok: true };
    const args: (string | number)[] = [buckets.length, ...buckets.map((b) => this.#prefix + b.key), now];
    for (const bucket of buckets) args.push(bucket.limit, bucket.windowMs);
    const [full, left] = await this.#redis.vcConsume(...args);
    if (full === 0) return { ok: true };
    const bucket = buckets[full - 1] as Bucket;
    return { ok: false, rule: bucket.rule, retryAfterMs: Number(left) };
  }

  async release(buckets: readonly Bucket[], now: number): Promise<void> {
    if (buckets.length === 0) return;
    await this.#redis.vcRelease(buckets.length, ...buckets.map((b) => this.#prefix + b.key), now);
  }

  async add(keys: readonly string[], windowMs: number, now: number): Promise<void> {
    if (keys.length === 0) return;
    await this.#redis.vcAdd(keys.length, ...keys.map((key) => this.#prefix + key), now, windowMs);
  }

  async read(keys: readonly string[], now: number): Promise<Counter[]> {
    const pipeline = this.#redis.pipeline();
    for (const key of keys) pipeline.hmget(this.#prefix + key, "c", "r");
    const answers = (await pipeline.exec()) ?? [];
    return answers.map(([error, value]) => {
      if (error) throw error;
      const [c, r] = (value as [string | null, string | null]).map((v) => (v === null ? Number.NaN : Number(v)));
      return Number.isFinite(c) && Number.isFinite(r) && (r as number) > now
        ? { count: c as number, resetAt: r as number }
        : { count: 0, resetAt: now };
    });
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
