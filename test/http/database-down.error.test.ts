import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../../src/http/app.js";
import { createVericode, type Vericode } from "../../src/vericode.js";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { testLogger } from "../support/logs.js";
import { TEST_SECRETS } from "../support/service.js";

const PHONE = "+50688887777";
const PASSWORD = "correct horse battery";

const USER = { id: "usr_down", role: "user", tokenVersion: 0 };
const WEEK = "?from=2026-11-01&to=2026-11-08";

interface RouteCall {
  name: string;
  method: "GET" | "POST";
  url: string;
  /** The bearer token's role, for a route that needs one. */
  as?: "user" | "admin";
  payload?: object;
}

/** Every route that reads or writes the database, with a request it would otherwise answer. */
const ROUTES: RouteCall[] = [
  { name: "register", method: "POST", url: "/api/v1/auth/register/", payload: { username: "ana", password: PASSWORD } },
  { name: "token", method: "POST", url: "/api/v1/auth/token/", payload: { username: "ana", password: PASSWORD } },
  // The refresh token is put in by `call`, signed by the service under test.
  { name: "refresh", method: "POST", url: "/api/v1/auth/token/refresh/" },
  { name: "me", method: "GET", url: "/api/v1/auth/me/", as: "user" },
  { name: "login/otp", method: "POST", url: "/api/v1/auth/login/otp/", payload: { phone_number: PHONE } },
  { name: "login/otp/verify", method: "POST", url: "/api/v1/auth/login/otp/verify/", payload: { phone_number: PHONE, otp_code: "123456" } },
  { name: "password-reset", method: "POST", url: "/api/v1/auth/password-reset/", payload: { phone_number: PHONE } },
  {
    name: "password-reset/confirm",
    method: "POST",
    url: "/api/v1/auth/password-reset/confirm/",
    payload: { phone_number: PHONE, otp_code: "123456", new_password: PASSWORD },
  },
  // REQUIRE_PHONE_VERIFICATION reads the account before a send or a verify that is not a registration's.
  { name: "send-otp", method: "POST", url: "/api/v1/messaging/send-otp/", as: "user", payload: { phone_number: PHONE, purpose: "login" } },
  {
    name: "verify-otp",
    method: "POST",
    url: "/api/v1/messaging/verify-otp/",
    as: "user",
    payload: { phone_number: PHONE, otp_code: "123456", purpose: "registration" },
  },
  { name: "otp/:id", method: "GET", url: `/api/v1/messaging/otp/otp_${"0".repeat(32)}/`, as: "user" },
  { name: "analytics summary", method: "GET", url: `/api/v1/analytics/summary/${WEEK}`, as: "admin" },
  { name: "analytics timeseries", method: "GET", url: `/api/v1/analytics/timeseries/${WEEK}`, as: "admin" },
];

async function expectUnavailable(app: FastifyInstance, vericode: Vericode, route: RouteCall): Promise<void> {
  const response = await app.inject({
    method: route.method,
    url: route.url,
    ...(route.as === undefined ? {} : { headers: { authorization: `Bearer ${vericode.tokens.issueAccess({ ...USER, role: route.as })}` } }),
    ...(route.name === "refresh" ? { payload: { refresh: vericode.tokens.issueRefresh(USER) } } : {}),
    ...(route.payload === undefined ? {} : { payload: route.payload }),
  });
  expect({ route: route.name, status: response.statusCode }).toEqual({ route: route.name, status: 503 });
  expect(response.headers["content-type"]).toContain("application/problem+json");
  expect(response.headers["retry-after"]).toBe("5");
  const body = response.json();
  expect(body).toMatchObject({ type: "/problems/service_unavailable", status: 503, code: "service_unavailable", success: false });
  expect(body.request_id).toEqual(expect.any(String));
  expect(body.message).toMatch(/Try again shortly/);
  // The driver's message (an address, a file) stays in the log.
  expect(response.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|destroyed|not open/);
}

describe("every route that needs the database, when it is down", () => {
  describe("PostgreSQL unreachable", () => {
    let vericode: Vericode;
    let app: FastifyInstance;

    beforeAll(async () => {
      vericode = await createVericode({
        env: { ...TEST_SECRETS, DATABASE_URL: "postgres://postgres@127.0.0.1:1/none", REQUIRE_PHONE_VERIFICATION: "true" },
        envFile: false,
        logger: testLogger(),
        migrate: false,
      });
      app = await buildApp(vericode);
    });
    afterAll(async () => {
      await app.close();
      await vericode.close();
    });

    for (const route of ROUTES) {
      it(`${route.name} answers 503 service_unavailable with Retry-After`, async () => {
        await expectUnavailable(app, vericode, route);
      });
    }
  });

  describe("SQLite closed under a running service", () => {
    let db: TestDatabase;
    let vericode: Vericode;
    let app: FastifyInstance;

    beforeAll(async () => {
      db = sqliteDatabase();
      vericode = await createVericode({
        env: { ...TEST_SECRETS, DATABASE_URL: db.url, REQUIRE_PHONE_VERIFICATION: "true" },
        envFile: false,
        logger: testLogger(),
      });
      app = await buildApp(vericode);
      await vericode.store.close();
    });
    afterAll(async () => {
      await app.close();
      await db.drop();
    });

    it("answers 503 service_unavailable with Retry-After on every one of them", async () => {
      for (const route of ROUTES) await expectUnavailable(app, vericode, route);
    });
  });
});
