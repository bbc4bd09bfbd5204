import { afterEach, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, startService, type TestService } from "../support/service.js";

const SEND = "/api/v1/messaging/send-otp/";
const VERIFY = "/api/v1/messaging/verify-otp/";

describe("protection over HTTP", () => {
  let db: TestDatabase | null = null;
  let service: TestService | null = null;
  let channel: RecordingChannel;
  let n = 0;

  afterEach(async () => {
    await service?.close();
    await db?.drop();
    service = null;
    db = null;
  });

  async function start(env: Record<string, string>): Promise<TestService> {
    db = sqliteDatabase();
    channel = new RecordingChannel();
    service = await startService(db, { channel, env });
    return service;
  }

  const send = (phone: string, headers: Record<string, string> = {}, s = service as TestService) =>
    s.app.inject({
      method: "POST",
      url: SEND,
      headers: { authorization: `Bearer ${s.tokenFor(`usr_h${++n}`)}`, ...headers },
      payload: { phone_number: phone, purpose: "login" },
    });

  it("without TRUSTED_PROXIES the client address is the socket's: X-Forwarded-For cannot dodge the per-IP limit", async () => {
    await start({ RATE_LIMIT_IP: "2/1h" });
    expect((await send("+50683330003", { "x-forwarded-for": "203.0.113.1" })).statusCode).toBe(200);
    expect((await send("+50684440004", { "x-forwarded-for": "203.0.113.2" })).statusCode).toBe(200);
    const refused = await send("+50685550005", { "x-forwarded-for": "203.0.113.3" });
    expect(refused.statusCode).toBe(429);
    expect(refused.headers["retry-after"]).toBe("3600");
    expect(refused.json()).toMatchObject({ code: "rate_limited", rule: "ip", success: false });
    expect(channel.sent).toHaveLength(2);
  });

  it("behind a trusted proxy each client address has its own limit", async () => {
    await start({ RATE_LIMIT_IP: "2/1h", TRUSTED_PROXIES: "127.0.0.1" });
    for (const phone of ["+50683330003", "+50684440004"]) {
      expect((await send(phone, { "x-forwarded-for": "203.0.113.1" })).statusCode).toBe(200);
    }
    expect((await send("+50685550005", { "x-forwarded-for": "203.0.113.1" })).json()).toMatchObject({ rule: "ip" });
    // The proxy appends the address it saw; the left-most entries are the client's word and not trusted.
    expect((await send("+50686660006", { "x-forwarded-for": "203.0.113.1, 198.51.100.7" })).statusCode).toBe(200);
    expect((await send("+50687770007", { "x-forwarded-for": "203.0.113.9" })).statusCode).toBe(200);
  });

  it("a refused destination is 422 destination_not_allowed with its rule; a spent budget is 503 budget_exceeded", async () => {
    await start({ ALLOWED_COUNTRIES: "CR", SMS_BUDGET_USD: "0.06", SMS_BUDGET_PERIOD: "month" });
    const foreign = await send("+34612345678");
    expect(foreign.statusCode).toBe(422);
    expect(foreign.json()).toMatchObject({ code: "destination_not_allowed", rule: "country" });
    expect((await send("+50683330003")).statusCode).toBe(200);
    const spent = await send("+50684440004");
    expect(spent.statusCode).toBe(503);
    expect(spent.json()).toMatchObject({ code: "budget_exceeded", rule: "budget" });
    expect(Number(spent.headers["retry-after"])).toBeGreaterThan(0);
    expect(channel.sent).toHaveLength(1);
  });

  it("too many tries for one number and purpose is 429 rate_limited with rule verify", async () => {
    const s = await start({ RATE_LIMIT_VERIFY: "2/1h" });
    const headers = { authorization: `Bearer ${s.tokenFor("usr_verifier")}` };
    await s.app.inject({ method: "POST", url: SEND, headers, payload: { phone_number: "+50683330003", purpose: "login" } });
    const verify = () =>
      s.app.inject({
        method: "POST",
        url: VERIFY,
        headers,
        payload: { phone_number: "+50683330003", otp_code: "000000", purpose: "login" },
      });
    expect((await verify()).statusCode).toBe(400);
    expect((await verify()).statusCode).toBe(400);
    const capped = await verify();
    expect(capped.statusCode).toBe(429);
    expect(capped.json()).toMatchObject({ code: "rate_limited", rule: "verify" });
    expect(capped.headers["retry-after"]).toBe("3600");
  });
});
