import { randomBytes, randomInt } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresAvailable, postgresDatabase, type TestDatabase } from "../support/databases.js";
import { REDIS_URL, redisAvailable, redisNamespace } from "../support/redis.js";
import { NO_LIMITS, TEST_SECRETS, testTokens } from "../support/service.js";
import { FakeTwilio } from "../support/twilio-server.js";
import { serveProcess, type VericodeProcess } from "../support/vericode-process.js";

const tokens = testTokens();

type Instance = VericodeProcess;
const serve = serveProcess;
const stop = (instance: Instance) => instance.stop();

/** A random Costa Rican mobile range (+506 8X XX, then four digits of subscriber). */
const range = () => `+5068${randomInt(3, 10)}${String(randomInt(0, 100)).padStart(2, "0")}`;

describe("several vericode processes on one PostgreSQL and one Redis", () => {
  const twilio = new FakeTwilio();
  let db: TestDatabase | null = null;
  let namespace: ReturnType<typeof redisNamespace> | null = null;
  let ready = false;

  beforeAll(async () => {
    ready = (await postgresAvailable()) && (await redisAvailable());
    if (!ready) return;
    db = await postgresDatabase();
    namespace = redisNamespace();
    await twilio.start();
  });
  afterAll(async () => {
    await twilio.stop();
    await db?.drop();
    await namespace?.drop();
  });

  /** Two deployments of vericode: `serve --workers 2` and a plain `serve`, all on the same stores. */
  async function fleet(env: Record<string, string>): Promise<Instance[]> {
    const common = {
      ...TEST_SECRETS,
      ...NO_LIMITS,
      ...twilio.env(),
      DATABASE_URL: (db as TestDatabase).url,
      REDIS_URL,
      REDIS_KEY_PREFIX: (namespace as { prefix: string }).prefix,
      LOG_LEVEL: "info",
      ...env,
    };
    return Promise.all([serve(common, ["--workers", "2"]), serve(common)]);
  }

  /** Fires every send at once, alternating between the instances; answers the status codes. */
  async function fire(instances: Instance[], sends: { phone: string; user: string }[]): Promise<number[]> {
    return Promise.all(
      sends.map(async ({ phone, user }, i) => {
        const instance = instances[i % instances.length] as Instance;
        const response = await fetch(`${instance.address}/api/v1/messaging/send-otp/`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${tokens.issueAccess({ id: user, role: "user" })}` },
          body: JSON.stringify({ phone_number: phone, purpose: "login" }),
        });
        await response.arrayBuffer();
        return response.status;
      }),
    );
  }

  it("a per-number and a per-prefix limit hold exactly across processes, and the provider gets exactly that many", async (context) => {
    if (!ready) context.skip();
    const instances = await fleet({ RATE_LIMIT_NUMBER: "10/1h", RATE_LIMIT_PREFIX: "20/1h" });
    try {
      const before = twilio.messages.length;
      // 40 users ask for a code to one number at once, through three processes.
      const phone = `${range()}1234`;
      const statuses = await fire(
        instances,
        Array.from({ length: 40 }, () => ({ phone, user: `usr_${randomBytes(4).toString("hex")}` })),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(10);
      expect(statuses.filter((s) => s === 429)).toHaveLength(30);
      expect(twilio.messages.length - before).toBe(10);

      // 50 different numbers of one range (the same number but for its last four digits).
      const prefix = range();
      const numbers = Array.from({ length: 50 }, (_, i) => ({ phone: `${prefix}${String(i).padStart(4, "0")}`, user: `usr_r${i}` }));
      const ranged = await fire(instances, numbers);
      expect(ranged.filter((s) => s === 200)).toHaveLength(20);
      expect(twilio.messages.length - before).toBe(30);
    } finally {
      await Promise.all(instances.map(stop));
    }
  }, 60_000);

  it("the spend budget holds exactly across processes: no send passes it", async (context) => {
    if (!ready) context.skip();
    // Costa Rica is estimated at $0.057: $0.57 is ten messages.
    const instances = await fleet({ SMS_BUDGET_USD: "0.57", SMS_BUDGET_PERIOD: "total" });
    try {
      const before = twilio.messages.length;
      const sends = Array.from({ length: 30 }, (_, i) => ({ phone: `${range()}${String(i).padStart(4, "0")}`, user: `usr_b${i}` }));
      const statuses = await fire(instances, sends);
      expect(statuses.filter((s) => s === 200)).toHaveLength(10);
      expect(statuses.filter((s) => s === 503)).toHaveLength(20);
      expect(twilio.messages.length - before).toBe(10);
    } finally {
      await Promise.all(instances.map(stop));
    }
  }, 60_000);
});
