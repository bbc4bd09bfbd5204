import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, startService, type TestService } from "../support/service.js";

describe("registration, passwordless login and password reset on codes", () => {
  let db: TestDatabase;
  let service: TestService;
  const channel = new RecordingChannel();

  beforeAll(async () => {
    db = sqliteDatabase();
    service = await startService(db, { channel });
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  const post = (url: string, payload: object, headers: Record<string, string> = {}) =>
    service.app.inject({ method: "POST", url, payload, headers });

  /** The next code sent to `phone` (the flows send after answering). */
  async function nextCode(phone: string, before: number): Promise<string> {
    for (let i = 0; i < 100 && channel.sentTo(phone) <= before; i++) await new Promise((r) => setTimeout(r, 10));
    return channel.lastCodeTo(phone);
  }

  /** Registers a user and verifies `phone` with a registration code; answers its tokens. */
  async function registered(username: string, phone: string): Promise<{ id: string; access: string; refresh: string }> {
    const created = (await post("/api/v1/auth/register/", { username, password: "correct horse battery" })).json();
    const auth = { authorization: `Bearer ${created.access}` };
    expect((await post("/api/v1/messaging/send-otp/", { phone_number: phone, purpose: "registration" }, auth)).statusCode).toBe(200);
    const verified = await post(
      "/api/v1/messaging/verify-otp/",
      { phone_number: phone, otp_code: channel.lastCodeTo(phone), purpose: "registration" },
      auth,
    );
    expect(verified.statusCode).toBe(200);
    return { id: created.user.id, access: created.access, refresh: created.refresh };
  }

  it("passwordless login: the same 202 for any number, then the code for tokens", async () => {
    const ana = await registered("ana", "+50683330003");
    const before = channel.sentTo("+50683330003");
    const known = await post("/api/v1/auth/login/otp/", { phone_number: "+50683330003" });
    const unknown = await post("/api/v1/auth/login/otp/", { phone_number: "+50684440004" });
    expect(known.statusCode).toBe(202);
    expect(unknown.statusCode).toBe(202);
    expect(known.json()).toEqual(unknown.json());
    const code = await nextCode("+50683330003", before);
    expect(channel.sentTo("+50684440004")).toBe(0);

    expect(
      (
        await post("/api/v1/auth/login/otp/verify/", { phone_number: "+50683330003", otp_code: code === "000000" ? "000001" : "000000" })
      ).json(),
    ).toMatchObject({
      code: "otp_invalid",
    });
    const tokens = await post("/api/v1/auth/login/otp/verify/", { phone_number: "+50683330003", otp_code: code });
    expect(tokens.statusCode).toBe(200);
    const me = await service.app.inject({
      method: "GET",
      url: "/api/v1/auth/me/",
      headers: { authorization: `Bearer ${tokens.json().access}` },
    });
    expect(me.json()).toMatchObject({ id: ana.id, username: "ana", phone_verified: true });
    // An unknown number answers like a number with no pending code.
    expect((await post("/api/v1/auth/login/otp/verify/", { phone_number: "+50684440004", otp_code: "123456" })).json()).toMatchObject({
      code: "otp_not_found",
    });
  });

  it("password reset: a code and a new password; every earlier refresh token is revoked", async () => {
    const bea = await registered("bea", "+50685550005");
    const before = channel.sentTo("+50685550005");
    expect((await post("/api/v1/auth/password-reset/", { phone_number: "+50685550005" })).statusCode).toBe(202);
    const code = await nextCode("+50685550005", before);
    expect(channel.sent.at(-1)?.body).toContain("contraseña");
    const done = await post("/api/v1/auth/password-reset/confirm/", {
      phone_number: "+50685550005",
      otp_code: code,
      new_password: "a brand new secret",
    });
    expect(done.json()).toMatchObject({ success: true });
    expect((await post("/api/v1/auth/token/refresh/", { refresh: bea.refresh })).statusCode).toBe(401);
    expect((await post("/api/v1/auth/token/", { username: "bea", password: "correct horse battery" })).statusCode).toBe(401);
    expect((await post("/api/v1/auth/token/", { username: "bea", password: "a brand new secret" })).statusCode).toBe(200);
    // The code is spent.
    expect(
      (
        await post("/api/v1/auth/password-reset/confirm/", {
          phone_number: "+50685550005",
          otp_code: code,
          new_password: "yet another one",
        })
      ).statusCode,
    ).toBe(400);
  });

  it("a verified number is one account's: verifying it elsewhere moves it, and the flows follow", async () => {
    const first = await registered("carla", "+50686660006");
    const second = await registered("dani", "+50686660006");
    expect(await service.vericode.store.findUserById(first.id)).toMatchObject({ phoneVerified: false });
    const before = channel.sentTo("+50686660006");
    await post("/api/v1/auth/login/otp/", { phone_number: "+50686660006" });
    const code = await nextCode("+50686660006", before);
    const tokens = (await post("/api/v1/auth/login/otp/verify/", { phone_number: "+50686660006", otp_code: code })).json();
    const me = await service.app.inject({ method: "GET", url: "/api/v1/auth/me/", headers: { authorization: `Bearer ${tokens.access}` } });
    expect(me.json()).toMatchObject({ id: second.id });
  });

  it("bad input gets a clear error", async () => {
    expect((await post("/api/v1/auth/login/otp/", { phone_number: "12" })).json()).toMatchObject({ code: "invalid_phone_number" });
    expect(
      (
        await post("/api/v1/auth/password-reset/confirm/", { phone_number: "+50683330003", otp_code: "123456", new_password: "short" })
      ).json(),
    ).toMatchObject({
      code: "validation_error",
    });
  });
});

describe("REQUIRE_PHONE_VERIFICATION=true", () => {
  let db: TestDatabase;
  let service: TestService;
  const channel = new RecordingChannel();

  beforeAll(async () => {
    db = sqliteDatabase();
    service = await startService(db, { channel, env: { REQUIRE_PHONE_VERIFICATION: "true" } });
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  const post = (url: string, payload: object, headers: Record<string, string> = {}) =>
    service.app.inject({ method: "POST", url, payload, headers });

  it("keeps an unverified account to verifying its number, and opens everything once it has", async () => {
    const created = (await post("/api/v1/auth/register/", { username: "newbie", password: "correct horse battery" })).json();
    const auth = { authorization: `Bearer ${created.access}` };
    const phone = "+50685550005";

    const me = await service.app.inject({ method: "GET", url: "/api/v1/auth/me/", headers: auth });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ phone_verified: false });

    for (const [url, body] of [
      ["/api/v1/messaging/send-otp/", { phone_number: phone, purpose: "login" }],
      ["/api/v1/messaging/verify-otp/", { phone_number: phone, purpose: "password_reset", otp_code: "123456" }],
    ] as const) {
      const refused = await post(url, body, auth);
      expect(refused.statusCode).toBe(403);
      expect(refused.headers["content-type"]).toContain("application/problem+json");
      expect(refused.json()).toMatchObject({ code: "phone_verification_required", success: false });
    }
    expect(channel.sentTo(phone)).toBe(0);

    // The registration purpose stays open: it is how the number gets verified.
    const sent = await post("/api/v1/messaging/send-otp/", { phone_number: phone, purpose: "registration" }, auth);
    expect(sent.statusCode).toBe(200);
    const verified = await post(
      "/api/v1/messaging/verify-otp/",
      { phone_number: phone, otp_code: channel.lastCodeTo(phone), purpose: "registration" },
      auth,
    );
    expect(verified.statusCode).toBe(200);

    // The same token works at once: the gate reads the account, not a claim frozen in the token.
    expect((await post("/api/v1/messaging/send-otp/", { phone_number: phone, purpose: "login" }, auth)).statusCode).toBe(200);
  });

  it("lets a subject the database does not hold through (an external issuer's user)", async () => {
    const token = service.vericode.tokens.issueAccess({ id: "ghost-user", role: "user" });
    const sent = await post(
      "/api/v1/messaging/send-otp/",
      { phone_number: "+50686660006", purpose: "login" },
      {
        authorization: `Bearer ${token}`,
      },
    );
    expect(sent.statusCode).toBe(200);
  });
});

describe("the code flows' starts are limited per client address", () => {
  let db: TestDatabase;
  let service: TestService;
  const channel = new RecordingChannel();

  beforeAll(async () => {
    db = sqliteDatabase();
    service = await startService(db, { channel, env: { RATE_LIMIT_IP: "3/1h" } });
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  it("answers 429 to an address past RATE_LIMIT_IP, the same whether or not the number has an account", async () => {
    const start = (url: string, phone: string, remoteAddress = "203.0.113.9") =>
      service.app.inject({ method: "POST", url, payload: { phone_number: phone }, remoteAddress });
    expect((await start("/api/v1/auth/login/otp/", "+50689990001")).statusCode).toBe(202);
    expect((await start("/api/v1/auth/password-reset/", "+50689990002")).statusCode).toBe(202);
    expect((await start("/api/v1/auth/login/otp/", "+50689990003")).statusCode).toBe(202);
    for (const url of ["/api/v1/auth/login/otp/", "/api/v1/auth/password-reset/"]) {
      const refused = await start(url, "+50689990004");
      expect(refused.statusCode).toBe(429);
      expect(Number(refused.headers["retry-after"])).toBeGreaterThan(3000);
      expect(refused.json()).toMatchObject({ code: "rate_limited", rule: "ip", success: false });
    }
    // Another address is not held back.
    expect((await start("/api/v1/auth/login/otp/", "+50689990004", "198.51.100.7")).statusCode).toBe(202);
  });
});
