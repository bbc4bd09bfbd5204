import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { testLogFile } from "../support/logs.js";
import { FakeTwilio } from "../support/twilio-server.js";
import {
  lastCode,
  mobile,
  startVerifyService,
  VERIFY_ACCOUNT_SID,
  VERIFY_API_KEY,
  VERIFY_API_SECRET,
  VERIFY_AUTH_TOKEN,
  type VerifyTestService,
} from "../support/verify.js";

const AUTH = `Basic ${Buffer.from(`${VERIFY_ACCOUNT_SID}:${VERIFY_AUTH_TOKEN}`).toString("base64")}`;
const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/**
 * The /v2 API's raw answers, as any Twilio client (curl, another SDK) sees them: exact status codes,
 * content type, field names, date format, absolute URLs and Twilio's error body.
 */
describe("Verify v2 on the wire", () => {
  const fake = new FakeTwilio();
  let db: TestDatabase;
  let service: VerifyTestService;
  let serviceSid: string;

  const call = async (method: string, path: string, form?: Record<string, string>, auth: string | null = AUTH) => {
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers: {
        ...(auth === null ? {} : { authorization: auth }),
        ...(form === undefined ? {} : { "content-type": "application/x-www-form-urlencoded" }),
      },
      ...(form === undefined ? {} : { body: new URLSearchParams(form).toString() }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text === "" ? null : (JSON.parse(text) as Record<string, unknown>) };
  };

  beforeAll(async () => {
    db = sqliteDatabase();
    await fake.start();
    service = await startVerifyService(db, fake);
    serviceSid = String((await call("POST", "/v2/Services", { FriendlyName: "Wire Test" })).body?.sid);
  });
  afterAll(async () => {
    await service.close();
    await fake.stop();
    await db.drop();
  });

  it("creates a service: 201, Twilio's fields, dates without milliseconds, links from PUBLIC_BASE_URL", async () => {
    const { status, headers, body } = await call("POST", "/v2/Services", { FriendlyName: "My App", CodeLength: "4" });
    expect(status).toBe(201);
    expect(headers.get("content-type")).toMatch(/^application\/json/);
    const sid = String(body?.sid);
    expect(sid).toMatch(/^VA[0-9a-f]{32}$/);
    expect(body).toMatchObject({
      account_sid: VERIFY_ACCOUNT_SID,
      friendly_name: "My App",
      code_length: 4,
      lookup_enabled: false,
      psd2_enabled: false,
      skip_sms_to_landlines: false,
      dtmf_input_required: true,
      do_not_share_warning_enabled: false,
      custom_code_enabled: false,
      url: `${service.url}/v2/Services/${sid}`,
      links: {
        verifications: `${service.url}/v2/Services/${sid}/Verifications`,
        rate_limits: `${service.url}/v2/Services/${sid}/RateLimits`,
      },
    });
    expect(body?.date_created).toMatch(DATE);
    expect(body?.date_updated).toMatch(DATE);
  });

  it("starts a verification: 201 with Twilio's verification resource, and never the code", async () => {
    const to = mobile();
    const { status, body } = await call("POST", `/v2/Services/${serviceSid}/Verifications`, { To: to, Channel: "sms" });
    expect(status).toBe(201);
    expect(Object.keys(body ?? {}).sort()).toEqual(
      [
        "account_sid",
        "amount",
        "channel",
        "date_created",
        "date_updated",
        "lookup",
        "payee",
        "send_code_attempts",
        "service_sid",
        "sid",
        "sna",
        "status",
        "to",
        "url",
        "valid",
      ].sort(),
    );
    expect(body).toMatchObject({ to, channel: "sms", status: "pending", valid: false, lookup: {}, amount: null, payee: null, sna: null });
    const attempts = body?.send_code_attempts as { time: string; channel: string; attempt_sid: string }[];
    expect(attempts).toEqual([
      { time: expect.stringMatching(DATE), channel: "SMS", attempt_sid: expect.stringMatching(/^VL[0-9a-f]{32}$/) },
    ]);
    expect(JSON.stringify(body)).not.toContain(lastCode(fake, to));
    const check = await call("POST", `/v2/Services/${serviceSid}/VerificationCheck`, { To: to, Code: lastCode(fake, to) });
    expect(check.status).toBe(200);
    expect(Object.keys(check.body ?? {}).sort()).toEqual(
      [
        "account_sid",
        "amount",
        "channel",
        "date_created",
        "date_updated",
        "payee",
        "service_sid",
        "sid",
        "sna_attempts_error_codes",
        "status",
        "to",
        "valid",
      ].sort(),
    );
    expect(check.body).toMatchObject({ sid: body?.sid, status: "approved", valid: true, sna_attempts_error_codes: [] });
  });

  it("errors are Twilio's body, never problem+json: 401/20003 without credentials, 404/20404, 400/60200", async () => {
    const denied = await call("POST", `/v2/Services/${serviceSid}/Verifications`, { To: mobile(), Channel: "sms" }, null);
    expect(denied.status).toBe(401);
    expect(denied.headers.get("content-type")).toMatch(/^application\/json/);
    expect(denied.headers.get("www-authenticate")).toBe('Basic realm="Twilio API"');
    expect(denied.body).toEqual({
      code: 20003,
      message: "Authenticate",
      more_info: "https://www.twilio.com/docs/errors/20003",
      status: 401,
    });
    const wrong = await call("GET", "/v2/Services", undefined, `Basic ${Buffer.from(`${VERIFY_ACCOUNT_SID}:nope`).toString("base64")}`);
    expect(wrong.status).toBe(401);
    const missing = await call("GET", `/v2/Services/VA${"0".repeat(32)}`);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({
      code: 20404,
      message: `The requested resource /v2/Services/VA${"0".repeat(32)} was not found`,
      more_info: "https://www.twilio.com/docs/errors/20404",
      status: 404,
    });
    const nowhere = await call("GET", "/v2/Nothing");
    expect(nowhere).toMatchObject({ status: 404, body: { code: 20404 } });
    const noTo = await call("POST", `/v2/Services/${serviceSid}/Verifications`, { Channel: "sms" });
    expect(noTo.status).toBe(400);
    expect(noTo.body).toMatchObject({
      code: 60200,
      message: "Invalid parameter: To",
      status: 400,
      more_info: "https://www.twilio.com/docs/errors/60200",
    });
    const longName = await call("POST", "/v2/Services", { FriendlyName: "x".repeat(31) });
    expect(longName.body).toMatchObject({ code: 60200, message: "Invalid parameter: FriendlyName" });
    const badCode = await call("POST", `/v2/Services/${serviceSid}/VerificationCheck`, { To: mobile(), Code: "12" });
    expect(badCode.body).toMatchObject({ code: 60200, message: "Invalid parameter: Code" });
  });

  it("Basic auth as Twilio takes it, and nothing else: each wrong pairing is 401 / 20003 and sends nothing", async () => {
    const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString("base64")}`;
    const sent = fake.messages.length;
    const start = (auth: string) => call("POST", `/v2/Services/${serviceSid}/Verifications`, { To: mobile(), Channel: "sms" }, auth);
    for (const auth of [
      basic(VERIFY_API_KEY, VERIFY_AUTH_TOKEN),
      basic(VERIFY_ACCOUNT_SID, VERIFY_API_SECRET),
      basic(`SK${"c3".repeat(16)}`, VERIFY_API_SECRET),
      basic(VERIFY_ACCOUNT_SID, ""),
      `Basic ${Buffer.from(VERIFY_ACCOUNT_SID + VERIFY_AUTH_TOKEN).toString("base64")}`,
      `Bearer ${VERIFY_AUTH_TOKEN}`,
    ]) {
      expect(await start(auth)).toMatchObject({ status: 401, body: { code: 20003 } });
    }
    expect(fake.messages.length).toBe(sent);
    expect((await start(basic(VERIFY_ACCOUNT_SID, VERIFY_AUTH_TOKEN).replace("Basic", "basic"))).status).toBe(201);
    expect((await start(basic(VERIFY_API_KEY, VERIFY_API_SECRET))).status).toBe(201);
    // An accepted header is kept: one that differs from it in its last character is still checked, and refused.
    const good = basic(VERIFY_ACCOUNT_SID, VERIFY_AUTH_TOKEN);
    expect((await start(good)).status).toBe(201);
    const near = basic(VERIFY_ACCOUNT_SID, `${VERIFY_AUTH_TOKEN.slice(0, -1)}${VERIFY_AUTH_TOKEN.endsWith("0") ? "1" : "0"}`);
    expect(await start(near)).toMatchObject({ status: 401, body: { code: 20003 } });
    expect(fake.messages.length).toBe(sent + 3);
  });

  it("each send of a start is one audit line: info when sent, warn with the provider's code when not", async () => {
    const lines = (sid: string) =>
      readFileSync(testLogFile(), "utf8")
        .split("\n")
        .filter((line) => line.includes('"event":"verify.send"') && line.includes(sid))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    const sent = await call("POST", `/v2/Services/${serviceSid}/Verifications`, { To: mobile(), Channel: "sms" });
    expect(sent.status).toBe(201);
    const sid = String(sent.body?.sid);
    const [ok] = lines(sid);
    expect(ok).toMatchObject({ level: 30, outcome: "sent", channel: "sms", sid });
    expect(ok).not.toHaveProperty("providerCode");
    // Twilio's test number for an unsubscribed recipient: the send fails with 21610.
    const failed = await call("POST", `/v2/Services/${serviceSid}/Verifications`, { To: "+15005550004", Channel: "sms" });
    expect(failed.status).toBeGreaterThanOrEqual(400);
    const refused = readFileSync(testLogFile(), "utf8")
      .split("\n")
      .filter((line) => line.includes('"event":"verify.send"') && line.includes('"level":40'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .at(-1);
    expect(refused).toMatchObject({ outcome: "rejected", providerCode: "21610" });
  });

  it("odd parameters: __proto__ is a name like any other, a huge Page is 60200, a code with letters is 60200", async () => {
    const proto = await call(
      "POST",
      "/v2/Services",
      Object.fromEntries([
        ["FriendlyName", "Proto"],
        ["__proto__", "x"],
        ["constructor", "y"],
      ]),
    );
    expect(proto).toMatchObject({ status: 201, body: { friendly_name: "Proto" } });
    const channel = await call("POST", `/v2/Services/${serviceSid}/Verifications`, { To: mobile(), Channel: "constructor" });
    expect(channel.body).toMatchObject({ code: 60200, message: "Invalid parameter: Channel" });
    expect((await call("GET", "/v2/Services?Page=100000000000000000000")).body).toMatchObject({
      code: 60200,
      message: "Invalid parameter: Page",
    });
    const to = mobile();
    await call("POST", `/v2/Services/${serviceSid}/Verifications`, { To: to, Channel: "sms" });
    const letters = await call("POST", `/v2/Services/${serviceSid}/VerificationCheck`, { To: to, Code: "12ab56" });
    expect(letters.body).toMatchObject({ code: 60200, message: "Invalid parameter: Code" });
    // A check names To as a start does, in E.164: a national form finds nothing.
    const national = await call("POST", `/v2/Services/${serviceSid}/VerificationCheck`, { To: to.slice(4), Code: lastCode(fake, to) });
    expect(national).toMatchObject({ status: 404, body: { code: 20404 } });
    const none = await call("POST", `/v2/Services/${serviceSid}/VerificationCheck`, { Code: "123456" });
    expect(none.body).toMatchObject({ code: 60200, message: "Invalid parameter: To" });
  });

  it("tells a malformed To from a well-formed number that is not valid: both 60200 naming To, each with its reason", async () => {
    const start = (To: string) => call("POST", `/v2/Services/${serviceSid}/Verifications`, { To, Channel: "sms" });
    const invalid = await start("+447700900111");
    expect(invalid).toMatchObject({ status: 400, body: { code: 60200, message: "Invalid parameter: To" } });
    expect(invalid.body?.details).toEqual({
      parameter: "To",
      reason: "+447700900111 is not a valid phone number: it is in no range of the +44 numbering plan (libphonenumber's metadata).",
    });
    expect((await start("+1555")).body?.details).toMatchObject({
      reason: "+1555 is not a valid phone number: it is too short for a +1 number.",
    });
    for (const malformed of ["50688887777", "+506 8888 abcd", "tel:+50688887777"]) {
      expect((await start(malformed)).body, malformed).toMatchObject({
        code: 60200,
        message: "Invalid parameter: To",
        details: { parameter: "To", reason: "To must be a phone number in E.164 format, such as +50688887777." },
      });
    }
  });

  it("a known path asked with a method it does not take is 405 / 20004 with Allow; an unknown path stays 404 / 20404", async () => {
    for (const [method, path, allow] of [
      ["PUT", "/v2/Services", "GET, HEAD, POST"],
      ["PATCH", `/v2/Services/${serviceSid}/`, "GET, HEAD, POST, DELETE"],
      ["GET", `/v2/Services/${serviceSid}/VerificationCheck`, "POST"],
      ["DELETE", `/v2/Services/${serviceSid}/Verifications/VE${"0".repeat(32)}`, "GET, HEAD, POST"],
      ["OPTIONS", `/v2/Services/${serviceSid}/RateLimits/RK${"0".repeat(32)}/Buckets`, "GET, HEAD, POST"],
    ] as const) {
      const refused = await call(method, path);
      expect(refused.status, `${method} ${path}`).toBe(405);
      expect(refused.headers.get("allow")).toBe(allow);
      expect(refused.headers.get("content-type")).toMatch(/^application\/json/);
      expect(refused.body).toEqual({
        code: 20004,
        message: "Method not allowed",
        more_info: "https://www.twilio.com/docs/errors/20004",
        status: 405,
        details: { reason: `${path} does not take ${method}: use ${allow}.` },
      });
    }
    // Credentials come first, as on every /v2 path; an unknown path has no Allow to give.
    expect(await call("PUT", "/v2/Services", undefined, null)).toMatchObject({ status: 401, body: { code: 20003 } });
    const unknown = await call("PUT", "/v2/Nothing");
    expect(unknown).toMatchObject({ status: 404, body: { code: 20404 } });
    expect(unknown.headers.get("allow")).toBeNull();
  });

  it("a JSON body reads as no parameters, as at Twilio, and a missing parameter's 60200 says why", async () => {
    const json = async (path: string, payload: unknown, contentType = "application/json") => {
      const response = await fetch(`${service.url}${path}`, {
        method: "POST",
        headers: { authorization: AUTH, "content-type": contentType },
        body: JSON.stringify(payload),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const hint = "The /v2 API reads form-encoded bodies (application/x-www-form-urlencoded), as Twilio's does";
    const created = await json("/v2/Services", { FriendlyName: "Json" });
    expect(created).toMatchObject({ status: 400, body: { code: 60200, message: "Invalid parameter: FriendlyName" } });
    expect(created.body.details).toEqual({
      parameter: "FriendlyName",
      reason: `FriendlyName is required. ${hint}: this request's application/json body was read as no parameters.`,
    });
    const start = await json(
      `/v2/Services/${serviceSid}/Verifications`,
      { To: mobile(), Channel: "sms" },
      "application/json; charset=utf-8",
    );
    expect(start.body).toMatchObject({ code: 60200, details: { parameter: "To", reason: expect.stringContaining(hint) } });
    const check = await json(`/v2/Services/${serviceSid}/VerificationCheck`, { To: mobile(), Code: "123456" }, "text/plain");
    expect(check.body).toMatchObject({ code: 60200, details: { parameter: "Code", reason: expect.stringContaining("text/plain body") } });
    // A form that lacks the parameter is told only that it is required.
    const form = await call("POST", "/v2/Services", { CodeLength: "6" });
    expect(form.body?.details).toEqual({ parameter: "FriendlyName", reason: "FriendlyName is required." });
    const limit = await json(`/v2/Services/${serviceSid}/RateLimits`, {});
    expect(limit.body).toMatchObject({ code: 60200, details: { parameter: "UniqueName", reason: expect.stringContaining(hint) } });
  });

  it("answers with and without a trailing slash, and never redirects", async () => {
    const plain = await call("GET", `/v2/Services/${serviceSid}`);
    const slash = await call("GET", `/v2/Services/${serviceSid}/`);
    expect(plain.status).toBe(200);
    expect(slash.status).toBe(200);
    expect(slash.body?.sid).toBe(serviceSid);
  });

  it("lists in Twilio's envelope: the key, meta and absolute page URLs; DELETE is 204 with no body", async () => {
    const { status, body } = await call("GET", "/v2/Services?PageSize=1");
    expect(status).toBe(200);
    expect(body?.meta).toEqual({
      page: 0,
      page_size: 1,
      first_page_url: `${service.url}/v2/Services?PageSize=1&Page=0`,
      previous_page_url: null,
      url: `${service.url}/v2/Services?PageSize=1&Page=0`,
      next_page_url: `${service.url}/v2/Services?PageSize=1&Page=1`,
      key: "services",
    });
    expect(body?.services).toHaveLength(1);
    const made = await call("POST", "/v2/Services", { FriendlyName: "Short lived" });
    const gone = await call("DELETE", `/v2/Services/${made.body?.sid}`);
    expect(gone).toMatchObject({ status: 204, body: null });
  });

  it("rate limits and buckets: a full bucket is 429 / 20429 with Retry-After and Twilio-Reached-Rate-Limit", async () => {
    const limit = await call("POST", `/v2/Services/${serviceSid}/RateLimits`, { UniqueName: "end_user_ip", Description: "per user IP" });
    expect(limit.status).toBe(201);
    const limitSid = String(limit.body?.sid);
    expect(limitSid).toMatch(/^RK[0-9a-f]{32}$/);
    expect(limit.body?.links).toEqual({ buckets: `${service.url}/v2/Services/${serviceSid}/RateLimits/${limitSid}/Buckets` });
    const again = await call("POST", `/v2/Services/${serviceSid}/RateLimits`, { UniqueName: "end_user_ip" });
    expect(again.body).toMatchObject({ code: 60200, message: "Invalid parameter: UniqueName" });
    const bucket = await call("POST", `/v2/Services/${serviceSid}/RateLimits/${limitSid}/Buckets`, { Max: "2", Interval: "60" });
    expect(bucket).toMatchObject({ status: 201, body: { max: 2, interval: 60, rate_limit_sid: limitSid } });
    expect(String(bucket.body?.sid)).toMatch(/^BL[0-9a-f]{32}$/);
    const twin = await call("POST", `/v2/Services/${serviceSid}/RateLimits/${limitSid}/Buckets`, { Max: "5", Interval: "60" });
    expect(twin.body).toMatchObject({ code: 60211 });

    const start = (ip: string) =>
      call("POST", `/v2/Services/${serviceSid}/Verifications`, {
        To: mobile(),
        Channel: "sms",
        RateLimits: JSON.stringify({ end_user_ip: ip }),
      });
    expect((await start("203.0.113.7")).status).toBe(201);
    expect((await start("203.0.113.7")).status).toBe(201);
    const sent = fake.messages.length;
    const full = await start("203.0.113.7");
    expect(full.status).toBe(429);
    expect(full.body).toMatchObject({ code: 20429, message: "Too many requests", status: 429 });
    expect(Number(full.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(full.headers.get("twilio-reached-rate-limit")).toBe(limitSid);
    const wait = full.headers.get("retry-after");
    const seconds = wait === "1" ? "second" : "seconds";
    expect(full.body?.details).toEqual({
      reason: `The service's rate limit ${limitSid} ("end_user_ip") allows 2 starts per 60 seconds for one value; retry after ${wait} ${seconds}.`,
    });
    expect(fake.messages.length).toBe(sent);
    expect((await start("203.0.113.8")).status).toBe(201);
    const unknown = await call("POST", `/v2/Services/${serviceSid}/Verifications`, {
      To: mobile(),
      Channel: "sms",
      RateLimits: '{"nope":"1"}',
    });
    expect(unknown.body).toMatchObject({ code: 60200, message: "Invalid parameter: RateLimits" });
  });

  it("Locale picks the message's language; one vericode has no messages in falls back; a malformed one is 60200", async () => {
    const to = mobile();
    await call("POST", `/v2/Services/${serviceSid}/Verifications`, { To: to, Channel: "sms", Locale: "fr" });
    expect(fake.messages.at(-1)?.body).toContain("Wire Test");
    expect(fake.messages.at(-1)?.body).not.toMatch(/^Your /);
    const english = mobile();
    await call("POST", `/v2/Services/${serviceSid}/Verifications`, {
      To: english,
      Channel: "sms",
      Locale: "en",
      CustomFriendlyName: "Other Name",
    });
    expect(fake.messages.at(-1)?.body).toBe(`Your Other Name verification code is: ${lastCode(fake, english)}.`);
    // Twilio has Turkish, vericode has not: the number's country's language (Costa Rica: Spanish), not an error.
    const turkish = await call("POST", `/v2/Services/${serviceSid}/Verifications`, { To: mobile(), Channel: "sms", Locale: "tr" });
    expect(turkish.status).toBe(201);
    expect(fake.messages.at(-1)?.body).toMatch(/^Tu código de Wire Test es: \d{6}\.$/);
    const malformed = await call("POST", `/v2/Services/${serviceSid}/Verifications`, { To: mobile(), Channel: "sms", Locale: "e$" });
    expect(malformed.body).toMatchObject({ code: 60200, message: "Invalid parameter: Locale" });
  });

  it("a spent budget that never renews is 429 / 20429 without Retry-After", async () => {
    const budgetDb = sqliteDatabase();
    const budgeted = await startVerifyService(budgetDb, fake, { SMS_BUDGET_USD: "0.001", SMS_BUDGET_PERIOD: "total" });
    try {
      const auth = { authorization: AUTH, "content-type": "application/x-www-form-urlencoded" };
      const made = await fetch(`${budgeted.url}/v2/Services`, { method: "POST", headers: auth, body: "FriendlyName=Budget" });
      const sid = ((await made.json()) as { sid: string }).sid;
      const response = await fetch(`${budgeted.url}/v2/Services/${sid}/Verifications`, {
        method: "POST",
        headers: auth,
        body: new URLSearchParams({ To: mobile(), Channel: "sms" }).toString(),
      });
      expect(response.status).toBe(429);
      expect(await response.json()).toMatchObject({ code: 20429 });
      expect(response.headers.get("retry-after")).toBeNull();
    } finally {
      await budgeted.close();
      await budgetDb.drop();
    }
  });
});

describe("Verify v2 while it is off", () => {
  it("answers 404 / 20404 saying how to turn it on, and the OpenAPI document still lists its routes", async () => {
    const { startService } = await import("../support/service.js");
    const db = sqliteDatabase();
    const service = await startService(db);
    try {
      const response = await service.app.inject({
        method: "POST",
        url: "/v2/Services",
        payload: "FriendlyName=x",
        headers: { "content-type": "application/x-www-form-urlencoded" },
      });
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ code: 20404, details: { reason: expect.stringContaining("VERIFY_ACCOUNT_SID") } });
      const openapi = (await service.app.inject({ url: "/openapi.json" })).json() as {
        paths: Record<string, Record<string, { tags?: string[] }>>;
      };
      expect(openapi.paths["/v2/Services/{ServiceSid}/Verifications"]?.post?.tags).toEqual(["verify"]);
      expect(openapi.paths["/v2/Services/{ServiceSid}/VerificationCheck"]?.post).toBeDefined();
    } finally {
      await service.close();
      await db.drop();
    }
  });
});

describe("Verify v2 with the console provider", () => {
  it("an email start needs no SMTP: the email is printed to the log, and its code checks", async () => {
    const { readdirSync, readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { startService } = await import("../support/service.js");
    const { LOG_DIR } = await import("../support/logs.js");
    const db = sqliteDatabase();
    const service = await startService(db, {
      env: { SMS_PROVIDER: "console", VERIFY_ACCOUNT_SID, VERIFY_AUTH_TOKEN },
    });
    const form = (payload: Record<string, string>) => ({
      headers: { authorization: AUTH, "content-type": "application/x-www-form-urlencoded" },
      payload: new URLSearchParams(payload).toString(),
    });
    try {
      const made = await service.app.inject({ method: "POST", url: "/v2/Services", ...form({ FriendlyName: "Console" }) });
      const sid = made.json().sid as string;
      const to = `ana.${Date.now()}@example.com`;
      const started = await service.app.inject({
        method: "POST",
        url: `/v2/Services/${sid}/Verifications`,
        ...form({ To: to, Channel: "email" }),
      });
      expect(started.json()).toMatchObject({ status: "pending", channel: "email", send_code_attempts: [{ channel: "EMAIL" }] });
      const printed = readdirSync(LOG_DIR)
        .filter((file) => file.startsWith("run-"))
        .flatMap((file) => readFileSync(join(LOG_DIR, file), "utf8").split("\n"))
        .map((line) => (line.startsWith("{") ? (JSON.parse(line) as { channel?: string; kind?: string; to?: string; text?: string }) : {}))
        .find((line) => line.channel === "console" && line.kind === "email" && line.to === to);
      const code = /\d{6}/.exec(printed?.text ?? "")?.[0] ?? "";
      expect(code).toMatch(/^\d{6}$/);
      const checked = await service.app.inject({
        method: "POST",
        url: `/v2/Services/${sid}/VerificationCheck`,
        ...form({ To: to, Code: code }),
      });
      expect(checked.json()).toMatchObject({ status: "approved", valid: true });
    } finally {
      await service.close();
      await db.drop();
    }
  });
});

describe("the /v2 error catalogue", () => {
  it("words a full bucket of a service's rate limit: its sid and name, what its buckets allow, when to retry", async () => {
    const { serviceLimitReason } = await import("../../src/verify/errors.js");
    const sid = `RK${"1".repeat(32)}`;
    expect(serviceLimitReason(sid, "end_user_ip", [{ limit: 1, windowMs: 1000 }], 1)).toBe(
      `The service's rate limit ${sid} ("end_user_ip") allows 1 start per 1 second for one value; retry after 1 second.`,
    );
    const buckets = [
      { limit: 100, windowMs: 86_400_000 },
      { limit: 5, windowMs: 60_000 },
    ];
    expect(serviceLimitReason(sid, null, buckets, 42)).toBe(
      `The service's rate limit ${sid} allows 5 starts per 60 seconds and 100 starts per 86,400 seconds for one value; retry after 42 seconds.`,
    );
    expect(serviceLimitReason(sid, null, [], undefined)).toBe(`The service's rate limit ${sid} is full for this value.`);
  });

  it("docs/twilio-verify.md lists every code the API answers, with its HTTP status", async () => {
    const { readFileSync } = await import("node:fs");
    const { TWILIO_ERRORS } = await import("../../src/verify/errors.js");
    const doc = readFileSync(new URL("../../docs/twilio-verify.md", import.meta.url), "utf8");
    const rows = [...doc.matchAll(/^\| (\d{5}) \| (\d{3}) \|/gm)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(Object.fromEntries(rows)).toEqual(
      Object.fromEntries(Object.entries(TWILIO_ERRORS).map(([code, e]) => [Number(code), e.status])),
    );
  });
});
