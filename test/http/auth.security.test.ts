import { generateKeyPairSync } from "node:crypto";
import { createSigner } from "fast-jwt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, startService, TEST_SECRETS, type TestService } from "../support/service.js";

const SEND = "/api/v1/messaging/send-otp/";
const payload = { phone_number: "+50688887777", purpose: "login" };

describe("bearer tokens", () => {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  const channel = new RecordingChannel();
  let db: TestDatabase;
  let service: TestService;

  beforeAll(async () => {
    db = sqliteDatabase();
    service = await startService(db, { channel, env: { JWT_PUBLIC_KEY: publicPem } });
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  const send = (authorization?: string) =>
    service.app.inject({ method: "POST", url: SEND, headers: authorization === undefined ? {} : { authorization }, payload });
  const hs = (claims: Record<string, unknown>, options: Record<string, unknown> = {}) =>
    createSigner({ key: TEST_SECRETS.JWT_SECRET, algorithm: "HS256", iss: "vericode", aud: "vericode", expiresIn: 60_000, ...options })(
      claims,
    );

  /**
   * Expects a 401 whose detail matches `detail` and whose `WWW-Authenticate` is RFC 6750's: the realm,
   * then for a refused token or header its `error` code and the same detail as `error_description`.
   */
  async function expectUnauthorized(authorization: string | undefined, detail: RegExp, error?: "invalid_request" | "invalid_token") {
    const response = await send(authorization);
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ code: "unauthorized", success: false });
    expect(response.json().detail).toMatch(detail);
    const challenge = response.headers["www-authenticate"];
    if (error === undefined) expect(challenge).toBe('Bearer realm="vericode"');
    else {
      expect(challenge).toBe(
        `Bearer realm="vericode", error="${error}", error_description="${response.json().detail.replaceAll('"', "'")}"`,
      );
    }
    return response.json().detail as string;
  }

  it("refuses a request without a token, with no error code in the challenge", () => expectUnauthorized(undefined, /Bearer/));
  it("refuses another scheme as no bearer credential (RFC 6750 §3.1: no error code)", () => expectUnauthorized("Token abc", /Bearer/));
  it("refuses a malformed Bearer header with invalid_request", async () => {
    for (const header of ["Bearer", "Bearer a.b.c d.e.f", "Bearer a,b.c"]) {
      await expectUnauthorized(header, /Authorization header must be: Bearer <JWT>/, "invalid_request");
    }
  });
  it("refuses a malformed token as malformed, not as an algorithm", async () => {
    const detail = await expectUnauthorized("Bearer abc.def.ghi", /malformed/, "invalid_token");
    expect(detail).not.toMatch(/algorithm/);
    await expectUnauthorized("Bearer abc", /malformed/, "invalid_token");
  });
  it("refuses a bad signature", () =>
    expectUnauthorized(
      `Bearer ${hs({ sub: "u" }, { key: "another-secret-0123456789abcdef0123456789" })}`,
      /^The token's signature is not valid\.$/,
      "invalid_token",
    ));
  it("refuses alg: none", () => {
    const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
    const body = Buffer.from(
      JSON.stringify({ sub: "u", iss: "vericode", aud: "vericode", exp: Math.floor(Date.now() / 1000) + 60 }),
    ).toString("base64url");
    return expectUnauthorized(`Bearer ${header}.${body}.`, /"none" are not accepted/, "invalid_token");
  });
  it("refuses an expired token", () =>
    expectUnauthorized(
      `Bearer ${hs({ sub: "u", exp: Math.floor(Date.now() / 1000) - 10 }, { expiresIn: undefined })}`,
      /^The token has expired\.$/,
      "invalid_token",
    ));
  it("refuses a wrong audience, naming the audience", () =>
    expectUnauthorized(
      `Bearer ${hs({ sub: "u" }, { aud: "someone-else" })}`,
      /^The token's audience \(aud\) is not accepted\.$/,
      "invalid_token",
    ));
  it("refuses a wrong issuer, naming the issuer", () =>
    expectUnauthorized(`Bearer ${hs({ sub: "u" }, { iss: "evil" })}`, /^The token's issuer \(iss\) is not accepted\.$/, "invalid_token"));
  it("refuses a token without exp", () =>
    expectUnauthorized(`Bearer ${hs({ sub: "u" }, { expiresIn: undefined })}`, /lacks a required claim \(exp\)/, "invalid_token"));
  it("refuses a refresh token used as an access token", async () => {
    const registered = await service.vericode.accounts.register({ username: "refresher", password: "long enough password" });
    await expectUnauthorized(`Bearer ${registered.refresh}`, /refresh/, "invalid_token");
  });
  it("refuses an HS256 token signed with the public key (algorithm confusion)", () =>
    expectUnauthorized(`Bearer ${hs({ sub: "u" }, { key: publicPem })}`, /signature/, "invalid_token"));

  it("accepts an external RS256 token and binds the code to its subject", async () => {
    const token = createSigner({
      key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      algorithm: "RS256",
      iss: "vericode",
      aud: "vericode",
      expiresIn: 60_000,
    })({
      sub: "auth0|external",
    });
    const response = await send(`Bearer ${token}`);
    expect(response.statusCode).toBe(200);
    const record = await service.vericode.store.findCode(response.json().id);
    expect(record?.userId).toBe("auth0|external");
    const me = await service.app.inject({ method: "GET", url: "/api/v1/auth/me/", headers: { authorization: `Bearer ${token}` } });
    expect(me.json()).toEqual({ id: "auth0|external", username: null, email: null, phone_number: null, phone_verified: false });
  });
});

describe("accounts", () => {
  let db: TestDatabase;
  let service: TestService;

  beforeAll(async () => {
    db = sqliteDatabase();
    service = await startService(db);
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  const post = (url: string, body: object) => service.app.inject({ method: "POST", url, payload: body });

  it("refuses a taken username or email, naming the field", async () => {
    expect(
      (await post("/api/v1/auth/register/", { username: "dup", email: "dup@example.com", password: "long enough password" })).statusCode,
    ).toBe(201);
    const again = await post("/api/v1/auth/register/", { username: "DUP", password: "long enough password" });
    expect(again.statusCode).toBe(400);
    expect(again.json()).toMatchObject({
      code: "validation_error",
      errors: [{ field: "username", code: "already_registered", message: "is already registered: sign in, or choose another username" }],
    });
    const email = await post("/api/v1/auth/register/", { email: "dup@example.com", password: "long enough password" });
    expect(email.json()).toMatchObject({ errors: [{ field: "email" }] });
  });

  it("needs a username or an email, a long enough password and a valid phone", async () => {
    expect((await post("/api/v1/auth/register/", { password: "long enough password" })).json()).toMatchObject({ code: "validation_error" });
    expect((await post("/api/v1/auth/register/", { username: "shorty", password: "short" })).json()).toMatchObject({
      code: "validation_error",
      errors: [{ field: "password" }],
    });
    expect(
      (await post("/api/v1/auth/register/", { username: "phoney", password: "long enough password", phone_number: "12" })).json(),
    ).toMatchObject({
      code: "invalid_phone_number",
    });
  });

  it("answers the same unauthorized for a wrong password and an unknown user", async () => {
    await post("/api/v1/auth/register/", { username: "known", password: "long enough password" });
    const wrong = await post("/api/v1/auth/token/", { username: "known", password: "not the password" });
    const unknown = await post("/api/v1/auth/token/", { username: "unknown", password: "not the password" });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json().detail).toBe(unknown.json().detail);
  });

  it("refuses a refresh with an access token or garbage", async () => {
    const registered = (await post("/api/v1/auth/register/", { username: "fresh", password: "long enough password" })).json();
    expect((await post("/api/v1/auth/token/refresh/", { refresh: registered.access })).statusCode).toBe(401);
    const garbage = await post("/api/v1/auth/token/refresh/", { refresh: "garbage" });
    expect(garbage.statusCode).toBe(401);
    // The refresh token comes in the body, not as a bearer credential: no RFC 6750 error code.
    expect(garbage.headers["www-authenticate"]).toBe('Bearer realm="vericode"');
  });
});
