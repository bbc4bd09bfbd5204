import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { startService, type TestService } from "../support/service.js";

describe("a known path asked with a method it does not take", () => {
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

  it.each([
    ["PUT", "/api/v1/auth/register/", "POST"],
    ["GET", "/api/v1/auth/register", "POST"],
    ["DELETE", "/api/v1/auth/token/", "POST"],
    ["POST", "/api/v1/auth/me/", "GET, HEAD"],
    ["PATCH", "/api/v1/messaging/send-otp/", "POST"],
    ["DELETE", "/api/v1/messaging/otp/otp_0123456789abcdef0123456789abcdef/", "GET, HEAD"],
    ["GET", "/api/v1/messaging/twilio/status/", "POST"],
    ["POST", "/api/v1/analytics/summary/?since=7d", "GET, HEAD"],
    ["OPTIONS", "/api/v1/auth/password-reset/confirm/", "POST"],
  ])("%s %s is 405 method_not_allowed with Allow: %s", async (method, url, allow) => {
    const response = await service.app.inject({ method: method as "PUT", url });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe(allow);
    expect(response.headers["content-type"]).toContain("application/problem+json");
    expect(response.headers["cache-control"]).toBe("no-store");
    const path = url.split("?")[0];
    expect(response.json()).toMatchObject({
      type: "/problems/method_not_allowed",
      title: "Method not allowed",
      status: 405,
      code: "method_not_allowed",
      detail: `${path} does not take ${method}: use ${allow}.`,
      success: false,
      request_id: expect.any(String),
    });
  });

  it("answers before reading the body: a text body is not 415, an oversized one not 413", async () => {
    const text = await service.app.inject({
      method: "PUT",
      url: "/api/v1/auth/register/",
      headers: { "content-type": "text/plain" },
      payload: "x".repeat(20_000),
    });
    expect(text.statusCode).toBe(405);
    expect(text.json().code).toBe("method_not_allowed");
  });

  it("leaves the methods a path takes alone, HEAD of a read included, and an unknown path 404", async () => {
    expect((await service.app.inject({ method: "POST", url: "/api/v1/auth/register/", payload: {} })).statusCode).toBe(400);
    expect((await service.app.inject({ method: "HEAD", url: "/api/v1/auth/me/" })).statusCode).toBe(401);
    const unknown = await service.app.inject({ method: "PUT", url: "/api/v1/auth/nothing/" });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().code).toBe("not_found");
    expect(unknown.headers.allow).toBeUndefined();
  });

  it("is not in the OpenAPI document: each path lists only the methods it takes", async () => {
    const doc = (await service.app.inject("/openapi.json")).json() as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths["/api/v1/auth/register/"] ?? {})).toEqual(["post"]);
    expect(Object.keys(doc.paths["/api/v1/auth/me/"] ?? {})).toEqual(["get"]);
  });
});
