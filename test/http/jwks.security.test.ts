import { generateKeyPairSync, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createSigner } from "fast-jwt";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, startService, type TestService } from "../support/service.js";

const ISSUER = "https://issuer.example";
const AUDIENCE = "parque-marino";

/** An ES256 key of the issuer: its public JWK under `kid`, and a signer of tokens for it. */
function issuerKey(kid: string): { jwk: object; sign: (claims?: Record<string, unknown>) => string } {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const key = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const signer = createSigner({ key, algorithm: "ES256", kid, iss: ISSUER, aud: AUDIENCE, expiresIn: 60_000 });
  return {
    jwk: { ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" },
    sign: (claims = {}) => signer({ sub: "kratos:7", ...claims }),
  };
}

/**
 * The identity provider's JWKS endpoint, of the test's own: it counts every fetch, serves `keys` with
 * `cacheControl` (none when null), answers after `delayMs`, and with `hang` accepts and never answers.
 */
class JwksServer {
  keys: object[] = [];
  cacheControl: string | null = null;
  delayMs = 0;
  hang = false;
  fetches = 0;
  readonly #server: Server = createServer((_request, response) => {
    this.fetches++;
    if (this.hang) return;
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.cacheControl !== null) headers["cache-control"] = this.cacheControl;
    const body = JSON.stringify({ keys: this.keys });
    setTimeout(() => response.writeHead(200, headers).end(body), this.delayMs);
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/** A vericode whose external issuer is `jwks`, with a JWKS deadline (JWT_JWKS_TIMEOUT_MS) of 300 ms unless told. */
async function serviceFor(jwks: JwksServer, db: TestDatabase, timeoutMs = 300): Promise<TestService> {
  return startService(db, {
    channel: new RecordingChannel(),
    env: { JWT_JWKS_URL: await jwks.start(), JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_JWKS_TIMEOUT_MS: String(timeoutMs) },
  });
}

/** A token whose header names a made-up kid: no valid signature is needed to ask for a key. */
function randomKidToken(): string {
  const header = Buffer.from(JSON.stringify({ alg: "ES256", typ: "JWT", kid: randomUUID() })).toString("base64url");
  const body = Buffer.from(JSON.stringify({ sub: "x", iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 })).toString(
    "base64url",
  );
  return `${header}.${body}.${Buffer.alloc(64, 1).toString("base64url")}`;
}

describe("tokens of an external issuer through JWT_JWKS_URL", () => {
  const current = issuerKey("key-1");
  const forged = issuerKey("key-1");
  const jwks = new JwksServer();
  let db: TestDatabase;
  let service: TestService;

  beforeAll(async () => {
    jwks.keys = [current.jwk];
    db = sqliteDatabase();
    service = await serviceFor(jwks, db);
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
    await jwks.stop();
  });

  const send = (token: string) =>
    service.app.inject({
      method: "POST",
      url: "/api/v1/messaging/send-otp/",
      headers: { authorization: `Bearer ${token}` },
      payload: { phone_number: "+50688887777", purpose: "login" },
    });

  it("accepts an ES256 token whose key the JWKS publishes, binding the code to its subject", async () => {
    const response = await send(current.sign());
    expect(response.statusCode).toBe(200);
    expect((await service.vericode.store.findCode(response.json().id))?.userId).toBe("kratos:7");
    expect(jwks.fetches).toBe(1);
  });

  it("refuses a token signed by another key under the same kid, or an unknown kid, saying which", async () => {
    const badSignature = await send(forged.sign());
    expect(badSignature.statusCode).toBe(401);
    expect(badSignature.json().detail).toMatch(/signature/);
    const unknown = await send(issuerKey("key-2").sign());
    expect(unknown.statusCode).toBe(401);
    expect(unknown.headers["www-authenticate"]).toMatch(
      /^Bearer realm="vericode", error="invalid_token", error_description="[^"]*signing key/,
    );
    expect(unknown.json().detail).toMatch(/signing key \(kid\) is not among the issuer's published keys/);
  });
});

describe("the JWKS: one fetch per 30 s whatever the tokens, a deadline, Cache-Control", () => {
  const key1 = issuerKey("key-1");
  let jwks: JwksServer;
  let db: TestDatabase;
  let service: TestService;

  const me = (token: string) =>
    service.app.inject({ method: "GET", url: "/api/v1/auth/me/", headers: { authorization: `Bearer ${token}` } });
  /** Answers `token`'s request, or "no answer" when none came within 5 s (the JWKS deadline is 300 ms). */
  const meWithin5s = (token: string) =>
    Promise.race([me(token), new Promise<"no answer">((resolve) => setTimeout(() => resolve("no answer"), 5_000).unref())]);
  /** Moves the wall clock (Date only: timers, the JWKS deadline among them, keep real time). */
  const advance = (seconds: number) => vi.setSystemTime(Date.now() + seconds * 1000);

  async function start(keys: object[], options: { cacheControl?: string; timeoutMs?: number } = {}): Promise<void> {
    jwks = new JwksServer();
    jwks.keys = keys;
    jwks.cacheControl = options.cacheControl ?? null;
    db = sqliteDatabase();
    service = await serviceFor(jwks, db, options.timeoutMs);
  }
  afterEach(async () => {
    vi.useRealTimers();
    await service.close();
    await db.drop();
    await jwks.stop();
  });

  it("a flood of 1,000 random-kid tokens causes at most one JWKS fetch, shared by the concurrent misses", async () => {
    // A deadline far above the time 1,000 requests take on a loaded machine: this test is about the count.
    await start([key1.jwk], { timeoutMs: 10_000 });
    jwks.delayMs = 100;
    const answers = await Promise.all(Array.from({ length: 1_000 }, () => me(randomKidToken())));
    expect(answers.every((answer) => answer.statusCode === 401)).toBe(true);
    expect(jwks.fetches).toBe(1);
    // That one fetch loaded the real key: no further fetch for it.
    expect((await me(key1.sign())).statusCode).toBe(200);
    expect(jwks.fetches).toBe(1);
  });

  it("accepts a key published under a new kid after one refetch, once 30 s have passed since the last fetch", async () => {
    await start([key1.jwk]);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    expect((await me(key1.sign())).statusCode).toBe(200);
    expect(jwks.fetches).toBe(1);
    const key2 = issuerKey("key-2");
    jwks.keys = [key1.jwk, key2.jwk];
    advance(10);
    // Within 30 s of the last fetch an unknown kid is refused without a fetch.
    expect((await me(key2.sign())).statusCode).toBe(401);
    expect(jwks.fetches).toBe(1);
    advance(21);
    expect((await me(key2.sign())).json()).toMatchObject({ id: "kratos:7" });
    expect(jwks.fetches).toBe(2);
    expect((await me(key1.sign())).statusCode).toBe(200);
    expect(jwks.fetches).toBe(2);
  });

  it("keeps the keys as long as the JWKS answer's Cache-Control max-age, then fetches them again", async () => {
    await start([key1.jwk], { cacheControl: "public, max-age=120" });
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    expect((await me(key1.sign())).statusCode).toBe(200);
    advance(90);
    expect((await me(key1.sign())).statusCode).toBe(200);
    expect(jwks.fetches).toBe(1);
    advance(35);
    expect((await me(key1.sign())).statusCode).toBe(200);
    await vi.waitFor(() => expect(jwks.fetches).toBe(2));
  });

  it("keeps the keys 10 minutes when the JWKS answer has no Cache-Control", async () => {
    await start([key1.jwk]);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    expect((await me(key1.sign())).statusCode).toBe(200);
    advance(9 * 60);
    expect((await me(key1.sign())).statusCode).toBe(200);
    expect(jwks.fetches).toBe(1);
    advance(2 * 60);
    expect((await me(key1.sign())).statusCode).toBe(200);
    await vi.waitFor(() => expect(jwks.fetches).toBe(2));
  });

  it("answers 401 at the JWT_JWKS_TIMEOUT_MS deadline while the JWKS does not answer", async () => {
    await start([key1.jwk]);
    jwks.hang = true;
    const started = Date.now();
    const answer = await meWithin5s(key1.sign());
    expect(answer).not.toBe("no answer");
    if (answer === "no answer") return;
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(answer.statusCode).toBe(401);
    expect(answer.json().detail).toMatch(/could not be fetched/);
    expect(jwks.fetches).toBe(1);
  });

  it("keeps accepting the keys it has while the JWKS is down, and refuses unknown kids at the deadline", async () => {
    await start([key1.jwk]);
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    expect((await me(key1.sign())).statusCode).toBe(200);
    jwks.hang = true;
    advance(11 * 60);
    // The set is stale: a known key answers at once while the refresh hangs.
    const known = await meWithin5s(key1.sign());
    expect(known === "no answer" ? known : known.statusCode).toBe(200);
    await vi.waitFor(() => expect(jwks.fetches).toBe(2));
    // An unknown kid waits for that fetch, no longer than the deadline, then is refused.
    const unknown = await meWithin5s(randomKidToken());
    expect(unknown === "no answer" ? unknown : unknown.statusCode).toBe(401);
    expect((await me(randomKidToken())).statusCode).toBe(401);
    expect((await me(key1.sign())).statusCode).toBe(200);
    expect(jwks.fetches).toBe(2);
  });
});
