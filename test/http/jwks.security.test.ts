import { generateKeyPairSync } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createSigner } from "fast-jwt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, startService, type TestService } from "../support/service.js";

describe("tokens of an external issuer through JWT_JWKS_URL", () => {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const privatePem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  let jwks: Server;
  let db: TestDatabase;
  let service: TestService;
  let fetches = 0;

  beforeAll(async () => {
    const jwk = { ...publicKey.export({ format: "jwk" }), kid: "key-1", alg: "ES256", use: "sig" };
    jwks = createServer((request, response) => {
      fetches++;
      if (request.url !== "/.well-known/jwks.json") return void response.writeHead(404).end();
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    const { port } = jwks.address() as AddressInfo;
    db = sqliteDatabase();
    service = await startService(db, {
      channel: new RecordingChannel(),
      env: {
        JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
        JWT_ISSUER: "https://issuer.example",
        JWT_AUDIENCE: "parque-marino",
      },
    });
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
    await new Promise((resolve) => jwks.close(resolve));
  });

  const sign = (key: string, kid: string, claims: Record<string, unknown> = {}) =>
    createSigner({ key, algorithm: "ES256", kid, iss: "https://issuer.example", aud: "parque-marino", expiresIn: 60_000 })({
      sub: "kratos:7",
      ...claims,
    });
  const send = (token: string) =>
    service.app.inject({
      method: "POST",
      url: "/api/v1/messaging/send-otp/",
      headers: { authorization: `Bearer ${token}` },
      payload: { phone_number: "+50688887777", purpose: "login" },
    });

  it("accepts an ES256 token whose key the JWKS publishes, binding the code to its subject", async () => {
    const response = await send(sign(privatePem, "key-1"));
    expect(response.statusCode).toBe(200);
    expect((await service.vericode.store.findCode(response.json().id))?.userId).toBe("kratos:7");
    expect(fetches).toBeGreaterThan(0);
  });

  it("refuses a token signed by another key under the same kid, or an unknown kid", async () => {
    expect((await send(sign(other, "key-1"))).statusCode).toBe(401);
    expect((await send(sign(privatePem, "key-2"))).statusCode).toBe(401);
  });
});
