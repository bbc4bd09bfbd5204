import type { FastifyInstance } from "fastify";
import { TokenService } from "../../src/accounts/tokens.js";
import type { Channel, DeliveryOutcome } from "../../src/channels/channel.js";
import type { Clock } from "../../src/clock.js";
import { buildApp } from "../../src/http/app.js";
import { createVericode, type Vericode } from "../../src/vericode.js";
import type { TestDatabase } from "./databases.js";
import { noteCode, testLogger } from "./logs.js";

export const TEST_SECRETS = {
  JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789abcdef",
  OTP_SECRET: "test-otp-secret-0123456789abcdef0123456789abcdef",
};

/** A token service with the test secret, for tests that talk to a vericode process of their own. */
export function testTokens(): TokenService {
  return new TokenService({
    secret: TEST_SECRETS.JWT_SECRET,
    publicKey: null,
    jwksUrl: null,
    issuer: "vericode",
    audience: "vericode",
    accessTtlSeconds: 900,
    refreshTtlSeconds: 3600,
  });
}

/**
 * Protection off, for the tests of the core rules, which send to one number many times: no rate limit,
 * no conversion breaker, and a resend cooldown that does not grow.
 */
export const NO_LIMITS: Record<string, string> = {
  RATE_LIMIT_CHALLENGE: "off",
  RATE_LIMIT_NUMBER: "off",
  RATE_LIMIT_USER: "off",
  RATE_LIMIT_IP: "off",
  RATE_LIMIT_PREFIX: "off",
  RATE_LIMIT_GLOBAL: "off",
  RATE_LIMIT_VERIFY: "off",
  CONVERSION_BREAKER_MIN_SENDS: "0",
  OTP_RESEND_COOLDOWN_MAX_SECONDS: "30",
};

export interface TestService {
  vericode: Vericode;
  app: FastifyInstance;
  /** An access token for a user id (no local account needed: an unknown `sub` may send and verify). */
  tokenFor(userId: string): string;
  close(): Promise<void>;
}

/** The whole service on a test database, through buildApp and inject. */
export async function startService(
  db: TestDatabase,
  options: { env?: Record<string, string>; clock?: Clock; channel?: Channel; sendTimeoutMs?: number; redisPrefix?: string } = {},
): Promise<TestService> {
  const vericode = await createVericode({
    // The core's tests send to a few numbers many times: protection is off unless a test turns it on.
    env: { ...TEST_SECRETS, ...NO_LIMITS, DATABASE_URL: db.url, LOG_LEVEL: "silent", ...options.env },
    envFile: false,
    logger: testLogger(),
    ...(db.schema === undefined ? {} : { databaseSchema: db.schema }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.channel === undefined ? {} : { channel: options.channel }),
    ...(options.sendTimeoutMs === undefined ? {} : { sendTimeoutMs: options.sendTimeoutMs }),
    ...(options.redisPrefix === undefined ? {} : { redisPrefix: options.redisPrefix }),
  });
  const app = await buildApp(vericode);
  return {
    vericode,
    app,
    tokenFor: (userId) => vericode.tokens.issueAccess({ id: userId, role: "user" }),
    async close() {
      await app.close();
      await vericode.close();
    },
  };
}

/** A channel that keeps what it was asked to send, for reading codes in tests. */
export class RecordingChannel implements Channel {
  readonly name = "sms";
  readonly sent: { to: string; body: string }[] = [];
  /** What the next sends answer instead of success (a refusal, a failure), one entry each. */
  readonly failures: DeliveryOutcome[] = [];
  /** The price the provider reports, in millionths of a dollar (null: not known at once, as with Twilio). */
  priceMicros: number | null = null;

  async send(message: { to: string; body: string; code?: string }): Promise<DeliveryOutcome> {
    if (message.code !== undefined) noteCode(message.code);
    const failure = this.failures.shift();
    if (failure !== undefined) return failure;
    this.sent.push({ to: message.to, body: message.body });
    return { ok: true, providerMessageId: `SM${this.sent.length}`, deliveryStatus: "queued", priceMicros: this.priceMicros };
  }

  sentTo(to: string): number {
    return this.sent.filter((m) => m.to === to).length;
  }

  lastCodeTo(to: string): string {
    const code = this.sent
      .filter((m) => m.to === to)
      .at(-1)
      ?.body.match(/\d{4,10}/)?.[0];
    if (code === undefined) throw new Error(`no code was sent to ${to}`);
    return code;
  }
}
