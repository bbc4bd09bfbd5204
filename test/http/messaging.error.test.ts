import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.js";
import { createVericode } from "../../src/vericode.js";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { testLogger } from "../support/logs.js";
import { startService, TEST_SECRETS, type TestService } from "../support/service.js";
import { FakeTwilio } from "../support/twilio-server.js";

const SEND = "/api/v1/messaging/send-otp/";
const VERIFY = "/api/v1/messaging/verify-otp/";

describe("send-otp and verify-otp: bad input and provider failures", () => {
  const twilio = new FakeTwilio();
  let db: TestDatabase;
  let service: TestService;
  let headers: Record<string, string>;
  let n = 0;
  const fresh = () => ({ authorization: `Bearer ${service.tokenFor(`usr_err_${++n}`)}` });

  beforeAll(async () => {
    db = sqliteDatabase();
    await twilio.start();
    service = await startService(db, { env: twilio.env(), sendTimeoutMs: 1500 });
    headers = { authorization: `Bearer ${service.tokenFor("usr_errors")}` };
  });
  afterAll(async () => {
    await service.close();
    await twilio.stop();
    await db.drop();
  });

  const post = (url: string, payload: unknown, h: Record<string, string> = headers) =>
    service.app.inject({ method: "POST", url, headers: h, payload: payload as object });

  function expectProblem(response: Awaited<ReturnType<typeof post>>, status: number, code: string): Record<string, unknown> {
    expect(response.statusCode).toBe(status);
    expect(response.headers["content-type"]).toContain("application/problem+json");
    const body = response.json();
    expect(body).toMatchObject({ type: `/problems/${code}`, status, code, success: false, request_id: expect.any(String) });
    expect(body.message).toBe(body.detail);
    expect(JSON.stringify(body)).not.toMatch(/at .*\.(ts|js):\d+/);
    return body;
  }

  it("malformed JSON is a validation_error", async () => {
    const response = await service.app.inject({
      method: "POST",
      url: SEND,
      headers: { ...headers, "content-type": "application/json" },
      payload: '{"phone_number": "+5068888',
    });
    expect(expectProblem(response, 400, "validation_error").errors).toEqual([
      { field: "body", code: "invalid_format", message: "is not valid JSON: check its quotes, commas and braces" },
    ]);
  });

  it("missing and unknown fields are named", async () => {
    const body = expectProblem(await post(SEND, { phone_number: "+50688887777", extra: true }), 400, "validation_error");
    expect(body.errors).toEqual(
      expect.arrayContaining([
        { field: "purpose", code: "required", message: "is required: give one of registration, login, password_reset" },
        {
          field: "extra",
          code: "unknown_field",
          message: "is not a field of this request: leave it out (the fields are phone_number, email, purpose, channel, locale)",
        },
      ]),
    );
  });

  it("an unknown purpose is a validation_error", async () => {
    const body = expectProblem(await post(SEND, { phone_number: "+50688887777", purpose: "signup" }), 400, "validation_error");
    expect(body.errors).toEqual([
      { field: "purpose", code: "not_allowed_value", message: "is not an allowed value: use one of registration, login, password_reset" },
    ]);
  });

  it.each(["12345", "not a number", "+1 234", "0688887777"])("the number %j is invalid_phone_number", async (phone) => {
    expectProblem(await post(SEND, { phone_number: phone, purpose: "login" }), 400, "invalid_phone_number");
  });

  it.each(["12ab56", "12345678901", "", " 123456"])("the code %j is a validation_error", async (code) => {
    const body = expectProblem(
      await post(VERIFY, { phone_number: "+50688887777", otp_code: code, purpose: "login" }),
      400,
      "validation_error",
    );
    expect(body.errors).toEqual([
      {
        field: "otp_code",
        code: expect.stringMatching(/^(invalid_format|too_long)$/),
        message: expect.stringMatching(/: use 4 to 10 digits$/),
      },
    ]);
  });

  it("a number as otp_code is not coerced", async () => {
    expectProblem(await post(VERIFY, { phone_number: "+50688887777", otp_code: 123456, purpose: "login" }), 400, "validation_error");
  });

  it("a body over 16 KiB is payload_too_large", async () => {
    expectProblem(await post(SEND, { phone_number: "+50688887777", purpose: "login", pad: "x".repeat(17_000) }), 413, "payload_too_large");
  });

  it("a body that is not JSON is unsupported_media_type", async () => {
    const response = await service.app.inject({
      method: "POST",
      url: SEND,
      headers: { ...headers, "content-type": "text/plain" },
      payload: "phone=+50688887777",
    });
    expectProblem(response, 415, "unsupported_media_type");
  });

  it("an empty JSON body is a validation_error", async () => {
    const response = await service.app.inject({
      method: "POST",
      url: SEND,
      headers: { ...headers, "content-type": "application/json" },
      payload: "",
    });
    expectProblem(response, 400, "validation_error");
  });

  it("an unknown path is not_found", async () => {
    expectProblem(await service.app.inject({ method: "GET", url: "/api/v1/nothing/" }), 404, "not_found");
  });

  it("a second send within the cooldown is rate_limited with Retry-After", async () => {
    const h = fresh();
    expect((await post(SEND, { phone_number: "+50688880001", purpose: "login" }, h)).statusCode).toBe(200);
    const response = await post(SEND, { phone_number: "+50688880001", purpose: "login" }, h);
    expectProblem(response, 429, "rate_limited");
    expect(Number(response.headers["retry-after"])).toBeGreaterThanOrEqual(29);
  });

  it("a wrong code tells the attempts remaining", async () => {
    const h = fresh();
    await post(SEND, { phone_number: "+50688880002", purpose: "login" }, h);
    const code = twilio.lastCodeTo("+50688880002");
    const wrong = code === "000000" ? "000001" : "000000";
    const body = expectProblem(
      await post(VERIFY, { phone_number: "+50688880002", otp_code: wrong, purpose: "login" }, h),
      400,
      "otp_invalid",
    );
    expect(body).toMatchObject({ attempts_remaining: 4, detail: "The code is not valid. 4 attempts remain." });
  });

  it("no pending code is otp_not_found", async () => {
    expectProblem(
      await post(VERIFY, { phone_number: "+50688880003", otp_code: "123456", purpose: "login" }, fresh()),
      400,
      "otp_not_found",
    );
  });

  it("Twilio's 21211 (+15005550001) is invalid_phone_number and the failed record is kept", async () => {
    const body = expectProblem(await post(SEND, { phone_number: "+15005550001", purpose: "login" }, fresh()), 400, "invalid_phone_number");
    const record = await service.vericode.store.findCode(String(body.id));
    expect(record).toMatchObject({ status: "failed", providerErrorCode: "21211" });
  });

  it.each([
    ["+15005550002", "21612"],
    ["+15005550003", "21408"],
    ["+15005550004", "21610"],
    ["+15005550009", "21614"],
  ])("Twilio's test number %s is provider_rejected with provider_code %s", async (phone, code) => {
    const body = expectProblem(await post(SEND, { phone_number: phone, purpose: "login" }, fresh()), 422, "provider_rejected");
    expect(body.provider_code).toBe(code);
    expect(await service.vericode.store.findCode(String(body.id))).toMatchObject({ status: "failed", providerErrorCode: code });
  });

  it("a persistent 429 from Twilio is provider_unavailable 503 with Retry-After", async () => {
    twilio.failNext(429, { count: 4 });
    const response = await post(SEND, { phone_number: "+50688880004", purpose: "login" }, fresh());
    expectProblem(response, 503, "provider_unavailable");
    expect(response.headers["retry-after"]).toBeDefined();
  });

  it("a 500 from Twilio is provider_unavailable 502; the record is failed and its code cannot verify", async () => {
    twilio.failNext(500);
    const h = fresh();
    const body = expectProblem(await post(SEND, { phone_number: "+50688880005", purpose: "login" }, h), 502, "provider_unavailable");
    expect(await service.vericode.store.findCode(String(body.id))).toMatchObject({ status: "failed", providerErrorCode: "http_500" });
  });

  it("a Twilio timeout is provider_unavailable 504, with no retry, and the code stays valid", async () => {
    twilio.hangNext();
    const h = fresh();
    const before = twilio.requestCount;
    const body = expectProblem(await post(SEND, { phone_number: "+50688880006", purpose: "login" }, h), 504, "provider_unavailable");
    expect(twilio.requestCount - before).toBe(1);
    expect(await service.vericode.store.findCode(String(body.id))).toMatchObject({ status: "pending", providerErrorCode: "timeout" });
    const code = twilio.lastCodeTo("+50688880006");
    const verify = await post(VERIFY, { phone_number: "+50688880006", otp_code: code, purpose: "login" }, h);
    expect(verify.statusCode).toBe(200);
  });
});

describe("when the database is down", () => {
  it("readiness, send and verify fail closed with 503 and nothing is sent", async () => {
    const twilio = await new FakeTwilio().start();
    const vericode = await createVericode({
      env: { ...TEST_SECRETS, ...twilio.env(), DATABASE_URL: "postgres://postgres@127.0.0.1:1/none" },
      envFile: false,
      logger: testLogger(),
      migrate: false,
    });
    const app = await buildApp(vericode);
    const headers = { authorization: `Bearer ${vericode.tokens.issueAccess({ id: "usr_x", role: "user" })}` };
    const ready = await app.inject("/readyz");
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ code: "service_unavailable" });
    const send = await app.inject({ method: "POST", url: SEND, headers, payload: { phone_number: "+50688887777", purpose: "login" } });
    expect(send.statusCode).toBe(503);
    expect(send.json()).toMatchObject({ code: "service_unavailable" });
    const verify = await app.inject({
      method: "POST",
      url: VERIFY,
      headers,
      payload: { phone_number: "+50688887777", otp_code: "123456", purpose: "login" },
    });
    expect(verify.statusCode).toBe(503);
    expect(twilio.requestCount).toBe(0);
    await app.close();
    await vericode.close();
    await twilio.stop();
  });
});

describe("an unexpected failure", () => {
  it("is internal_error with no stack trace or internal message", async () => {
    const db = sqliteDatabase();
    const service = await startService(db, {
      channel: {
        name: "sms",
        send: async () => {
          throw new Error("secret internal detail at /srv/app.js:12");
        },
      },
    });
    const response = await service.app.inject({
      method: "POST",
      url: SEND,
      headers: { authorization: `Bearer ${service.tokenFor("usr_boom")}` },
      payload: { phone_number: "+50688887777", purpose: "login" },
    });
    expect(response.statusCode).toBe(500);
    expect(response.json()).toMatchObject({ code: "internal_error", success: false });
    expect(response.body).not.toContain("secret internal detail");
    await service.close();
    await db.drop();
  });
});
