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

  async function expectUnauthorized(authorization: string | undefined, detail?: RegExp): Promise<void> {
    const response = await send(authorization);
    expect(response.statusCode).toBe(401);
    expect(response.headers["www-authenticate"]).toContain("Bearer");
    expect(response.json()).toMatchObject({ code: "unauthorized", success: false });
    if (detail !== undefined) expect(response.json().detail).toMatch(detail);
  }

  it("refuses a request without a token", () => expectUnauthorized(undefined, /Bearer/));
  it("refuses a malformed header", () => expectUnauthorized("Token abc"));
  it("refuses a bad signature", () =>
    expectUnauthorized(`Bearer ${hs({ sub: "u" }, { key: "another-secret-0123456789abcdef0123456789" })}`, /signature/));
  it("refuses alg: none", () => {
    const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
    const body = Buffer.from(
      JSON.stringify({ sub: "u", iss: "vericode", aud: "vericode", exp: Math.floor(Date.now() / 1000) + 60 }),
    ).toString("base64url");
    return expectUnauthorized(`Bearer ${header}.${body}.`, /algorithm|not accepted/);
  });
  it("refuses an expired token", () =>
    expectUnauthorized(`Bearer ${hs({ sub: "u", exp: Math.floor(Date.now() / 1000) - 10 }, { expiresIn: undefined })}`, /expired/));
  it("refuses a wrong audience", () => expectUnauthorized(`Bearer ${hs({ sub: "u" }, { aud: "someone-else" })}`, /audience/));
  it("refuses a wrong issuer", () => expectUnauthorized(`Bearer ${hs({ sub: "u" }, { iss: "evil" })}`, /issuer/));
  it("refuses a token without exp", () => expectUnauthorized(`Bearer ${hs({ sub: "u" }, { expiresIn: undefined })}`, /exp/));
  it("refuses a refresh token used as an access token", async () => {
    const registered = await service.vericode.accounts.register({ username: "refresher", password: "long enough password" });
    await expectUnauthorized(`Bearer ${registered.refresh}`, /refresh/);
  });
  it("refuses an HS256 token signed with the public key (algorithm confusion)", () =>
    expectUnauthorized(`Bearer ${hs({ sub: "u" }, { key: publicPem })}`, /signature/));

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
    expect(again.json()).toMatchObject({ code: "validation_error", errors: [{ field: "username", message: "already registered" }] });
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
    expect((await post("/api/v1/auth/token/refresh/", { refresh: "garbage" })).statusCode).toBe(401);
  });
});
