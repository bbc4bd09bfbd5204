import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { OutgoingMessage } from "../../src/channels/channel.js";
import { TwilioSmsChannel } from "../../src/channels/twilio-sms.js";
import type { TwilioConfig } from "../../src/config.js";
import { FakeTwilio } from "../support/twilio-server.js";

/**
 * The real `twilio` SDK, pointed at our Twilio-compatible server through TWILIO_API_BASE_URL. What every
 * channel must do (refusals by code, outages, timeouts, the deadline, logs) is in conformance.test.ts.
 */
describe("TwilioSmsChannel through the twilio SDK", () => {
  const twilio = new FakeTwilio();
  let config: TwilioConfig;

  beforeAll(async () => {
    await twilio.start();
    config = twilio.config();
  });
  afterAll(() => twilio.stop());
  beforeEach(() => {
    twilio.messages.length = 0;
  });

  const message = (to: string, overrides: Partial<OutgoingMessage> = {}): OutgoingMessage => ({
    to,
    body: "123456 is your verification code.",
    ttlSeconds: 600,
    reference: "otp_1",
    deadline: Date.now() + 2000,
    code: "123456",
    locale: "en",
    purpose: "login",
    ...overrides,
  });

  it("sends form-encoded with Basic auth, the sender and ValidityPeriod, and returns the SID", async () => {
    const outcome = await new TwilioSmsChannel(config).send(message("+50688887777"));
    expect(outcome).toMatchObject({ ok: true, deliveryStatus: "queued" });
    expect(twilio.messages[0]).toMatchObject({
      to: "+50688887777",
      from: "+15005550006",
      body: "123456 is your verification code.",
      validityPeriod: "600",
      authUser: twilio.accountSid,
    });
    expect(outcome.ok && outcome.providerMessageId).toBe(twilio.messages[0]?.sid);
  });

  it("authenticates with an API key and secret, and sends through a messaging service", async () => {
    const channel = new TwilioSmsChannel({
      ...config,
      username: twilio.apiKey,
      password: twilio.apiSecret,
      phoneNumber: null,
      messagingServiceSid: `MG${"0".repeat(32)}`,
    });
    expect(await channel.send(message("+50688887777"))).toMatchObject({ ok: true, deliveryStatus: "accepted" });
    expect(twilio.messages[0]).toMatchObject({ authUser: twilio.apiKey, from: null, messagingServiceSid: `MG${"0".repeat(32)}` });
  });

  it("retries a 429 with backoff within the deadline, then succeeds", async () => {
    twilio.failNext(429, { count: 2 });
    const before = twilio.requestCount;
    expect(await new TwilioSmsChannel(config).send(message("+50688887777"))).toMatchObject({ ok: true });
    expect(twilio.requestCount - before).toBe(3);
    expect(twilio.messages).toHaveLength(1);
  });

  /** Sends with `deadlineMs` left, expects Twilio's 429 as `throttled`, and answers how many requests it made. */
  async function requestsUntilThrottled(deadlineMs: number): Promise<number> {
    const before = twilio.requestCount;
    expect(await new TwilioSmsChannel(config).send(message("+50688887777", { deadline: Date.now() + deadlineMs }))).toMatchObject({
      ok: false,
      kind: "throttled",
      providerCode: "20429",
    });
    return twilio.requestCount - before;
  }

  it("gives up on a persistent 429 as throttled", async () => {
    twilio.failNext(429, { count: 4 });
    // The first try and three retries, no more.
    expect(await requestsUntilThrottled(10_000)).toBe(4);
  });

  it("does not start a retry the deadline leaves no time for: the answer stays throttled, not a timeout", async () => {
    // One 429 only: a retry, had one started, would have been accepted. The first wait is drawn at its
    // longest (199 ms), which with 250 ms for the retry itself leaves no room in a 440 ms deadline.
    const random = vi.spyOn(Math, "random").mockReturnValue(0.999);
    try {
      twilio.failNext(429);
      expect(await requestsUntilThrottled(440)).toBe(1);
    } finally {
      random.mockRestore();
    }
  });

  it("a 500 is a failure and is not retried", async () => {
    twilio.failNext(500);
    const before = twilio.requestCount;
    expect(await new TwilioSmsChannel(config).send(message("+50688887777"))).toMatchObject({ ok: false, kind: "failed" });
    expect(twilio.requestCount - before).toBe(1);
  });

  it("a hang becomes a timeout at the deadline, without a retry", async () => {
    twilio.hangNext();
    const before = twilio.requestCount;
    const started = Date.now();
    const outcome = await new TwilioSmsChannel(config).send(message("+50688887777", { deadline: Date.now() + 300 }));
    expect(outcome).toMatchObject({ ok: false, kind: "timeout" });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(twilio.messages).toHaveLength(1);
    expect(twilio.requestCount - before).toBe(1);
  });
});
