import Fastify, { type LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { vericodePlugin } from "../../src/http/plugin.js";
import { createVericode } from "../../src/vericode.js";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, startService, TEST_SECRETS, type TestService } from "../support/service.js";

/** RFC 6749 §5.1: an answer that carries tokens must not be stored by any cache; codes' answers neither. */
function expectNeverCached(response: LightMyRequestResponse, status: number): void {
  expect(response.statusCode).toBe(status);
  expect(response.headers["cache-control"]).toBe("no-store");
  expect(response.headers.pragma).toBe("no-cache");
}

describe("Cache-Control: no-store on every /api/ answer, problems included", () => {
  const channel = new RecordingChannel();
  let db: TestDatabase;
  let service: TestService;

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

  it("register, token, refresh and me", async () => {
    const register = await post("/api/v1/auth/register/", { username: "cached", password: "correct horse battery" });
    expectNeverCached(register, 201);
    const token = await post("/api/v1/auth/token/", { username: "cached", password: "correct horse battery" });
    expectNeverCached(token, 200);
    expectNeverCached(await post("/api/v1/auth/token/refresh/", { refresh: token.json().refresh }), 200);
    const me = await service.app.inject({
      method: "GET",
      url: "/api/v1/auth/me/",
      headers: { authorization: `Bearer ${token.json().access}` },
    });
    expectNeverCached(me, 200);
  });

  it("send-otp, verify-otp, the code's state and the code flows", async () => {
    const auth = { authorization: `Bearer ${service.tokenFor("usr_nocache")}` };
    const sent = await post("/api/v1/messaging/send-otp/", { phone_number: "+50688880001", purpose: "login" }, auth);
    expectNeverCached(sent, 200);
    const code = channel.lastCodeTo("+50688880001");
    expectNeverCached(
      await post("/api/v1/messaging/verify-otp/", { phone_number: "+50688880001", otp_code: code, purpose: "login" }, auth),
      200,
    );
    expectNeverCached(await service.app.inject({ method: "GET", url: `/api/v1/messaging/otp/${sent.json().id}/`, headers: auth }), 200);
    expectNeverCached(await post("/api/v1/auth/login/otp/", { phone_number: "+50688880002" }), 202);
  });

  it("problem answers: 400, 401, 404", async () => {
    expectNeverCached(await post("/api/v1/auth/register/", { password: "correct horse battery" }), 400);
    expectNeverCached(await post("/api/v1/auth/token/", { username: "nobody", password: "correct horse battery" }), 401);
    expectNeverCached(await service.app.inject({ method: "GET", url: "/api/v1/auth/me/" }), 401);
    expectNeverCached(await service.app.inject({ method: "GET", url: "/api/v1/nothing-here/" }), 404);
  });
});

describe("Cache-Control: no-store when a host application mounts vericodePlugin", () => {
  it("is on vericode's /api/ answers in the host's own Fastify, problems included", async () => {
    const db = sqliteDatabase();
    const vericode = await createVericode({
      env: { ...TEST_SECRETS, DATABASE_URL: db.url, LOG_LEVEL: "silent" },
      envFile: false,
    });
    const host = Fastify();
    await host.register(vericodePlugin, { vericode });
    try {
      expectNeverCached(await host.inject({ method: "GET", url: "/api/v1/auth/me/" }), 401);
      const registered = await host.inject({
        method: "POST",
        url: "/api/v1/auth/register/",
        payload: { username: "host_user", password: "correct horse battery" },
      });
      expectNeverCached(registered, 201);
      expect((await host.inject({ method: "GET", url: "/healthz" })).headers["cache-control"]).toBeUndefined();
    } finally {
      await host.close();
      await vericode.close();
      await db.drop();
    }
  });
});
