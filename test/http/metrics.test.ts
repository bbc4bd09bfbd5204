import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, startService, type TestService } from "../support/service.js";

describe("GET /metrics", () => {
  let db: TestDatabase;
  let service: TestService;
  const channel = new RecordingChannel();
  const token = "metrics-token-0123456789abcdef";

  beforeAll(async () => {
    db = sqliteDatabase();
    channel.priceMicros = 57_000;
    service = await startService(db, { channel, env: { METRICS_TOKEN: token } });
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  const scrape = (authorization?: string) =>
    service.app.inject({ method: "GET", url: "/metrics", headers: authorization === undefined ? {} : { authorization } });

  it("counts sends, verifications by outcome, refusals by rule, spend and provider latency", async () => {
    const headers = { authorization: `Bearer ${service.tokenFor("usr_metrics")}` };
    const post = (url: string, payload: object) => service.app.inject({ method: "POST", url, headers, payload });
    const phone = "+50688882001";
    expect((await post("/api/v1/messaging/send-otp/", { phone_number: phone, purpose: "login" })).statusCode).toBe(200);
    expect((await post("/api/v1/messaging/send-otp/", { phone_number: phone, purpose: "login" })).statusCode).toBe(429);
    const code = channel.lastCodeTo(phone);
    const wrong = code === "000000" ? "000001" : "000000";
    expect((await post("/api/v1/messaging/verify-otp/", { phone_number: phone, otp_code: wrong, purpose: "login" })).statusCode).toBe(400);
    expect((await post("/api/v1/messaging/verify-otp/", { phone_number: phone, otp_code: code, purpose: "login" })).statusCode).toBe(200);

    const response = await scrape(`Bearer ${token}`);
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toContain("text/plain");
    const text = response.body;
    expect(text).toContain('vericode_otp_sends_total{channel="sms",outcome="sent"} 1');
    expect(text).toContain('vericode_otp_refusals_total{rule="cooldown"} 1');
    expect(text).toContain('vericode_otp_verifications_total{outcome="invalid"} 1');
    expect(text).toContain('vericode_otp_verifications_total{outcome="verified"} 1');
    expect(text).toContain('vericode_sms_spend_usd_total{channel="sms"} 0.057');
    expect(text).toContain('vericode_provider_request_seconds_count{channel="sms",outcome="sent"} 1');
    // Labels are bounded sets: never a number, a user or a code.
    expect(text).not.toContain(phone.slice(1));
    expect(text).not.toContain(code);
  });

  it("asks for METRICS_TOKEN when it is set", async () => {
    for (const authorization of [undefined, "Bearer wrong", `Bearer ${token}x`, token]) {
      const refused = await scrape(authorization);
      expect(refused.statusCode).toBe(401);
      expect(refused.json()).toMatchObject({ code: "unauthorized", success: false });
    }
  });

  it("is open without METRICS_TOKEN", async () => {
    const other = sqliteDatabase();
    const open = await startService(other);
    try {
      const response = await open.app.inject({ method: "GET", url: "/metrics" });
      expect(response.statusCode).toBe(200);
      expect(response.body).toContain("# TYPE vericode_otp_sends_total counter");
    } finally {
      await open.close();
      await other.drop();
    }
  });
});
