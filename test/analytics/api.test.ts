import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, startService, type TestService } from "../support/service.js";

describe("the analytics API", () => {
  let db: TestDatabase;
  let service: TestService;
  const channel = new RecordingChannel();
  let admin: Record<string, string>;
  let user: Record<string, string>;

  beforeAll(async () => {
    db = sqliteDatabase();
    service = await startService(db, { channel });
    const post = (url: string, payload: object) => service.app.inject({ method: "POST", url, payload });
    await post("/api/v1/auth/register/", { username: "boss", password: "correct horse battery" });
    await service.vericode.store.setRole("boss", "admin", Date.now());
    const tokens = (await post("/api/v1/auth/token/", { username: "boss", password: "correct horse battery" })).json();
    admin = { authorization: `Bearer ${tokens.access}` };
    const plain = (await post("/api/v1/auth/register/", { username: "pleb", password: "correct horse battery" })).json();
    user = { authorization: `Bearer ${plain.access}` };
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  const get = (url: string, headers: Record<string, string>) => service.app.inject({ method: "GET", url, headers });
  const send = (phone: string, purpose = "login") =>
    service.app.inject({ method: "POST", url: "/api/v1/messaging/send-otp/", headers: user, payload: { phone_number: phone, purpose } });
  const verify = (phone: string, code: string, purpose = "login") =>
    service.app.inject({
      method: "POST",
      url: "/api/v1/messaging/verify-otp/",
      headers: user,
      payload: { phone_number: phone, otp_code: code, purpose },
    });

  it("counts what the API did: sends, verifications, a refusal", async () => {
    for (const phone of ["+50688881001", "+50688881002", "+50688881003", "+14155550123"]) expect((await send(phone)).statusCode).toBe(200);
    expect((await verify("+50688881001", channel.lastCodeTo("+50688881001"))).statusCode).toBe(200);
    expect((await verify("+14155550123", channel.lastCodeTo("+14155550123"))).statusCode).toBe(200);
    expect((await send("+50688881002")).statusCode).toBe(429); // the resend cooldown: a refusal by rule

    const summary = await get("/api/v1/analytics/summary/?since=1h", admin);
    expect(summary.statusCode).toBe(200);
    const body = summary.json();
    expect(body.totals).toMatchObject({ sent: 4, verified: 2, conversion_rate: 0.5, refused: 1, failed: 0 });
    expect(body.refusals_by_rule).toEqual([{ rule: "cooldown", count: 1 }]);
    expect(body.by_country.map((c: { country: string; sent: number }) => [c.country, c.sent])).toEqual([
      ["CR", 3],
      ["US", 1],
    ]);
    expect(body.time_to_verify.verified).toBe(2);

    // since takes an ISO 8601 date or time as well as a duration, as from does.
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const iso = await get(`/api/v1/analytics/summary/?since=${encodeURIComponent(hourAgo)}`, admin);
    expect(iso.statusCode).toBe(200);
    expect(iso.json()).toMatchObject({ from: hourAgo, totals: { sent: 4, verified: 2 } });

    const cr = (await get("/api/v1/analytics/summary/?since=1h&country=cr&purpose=login", admin)).json();
    expect(cr.totals).toMatchObject({ sent: 3, verified: 1 });
    expect(cr.filters).toEqual({ purpose: "login", channel: null, country: "CR" });

    const series = await get("/api/v1/analytics/timeseries/?since=3h&group_by=hour", admin);
    expect(series.statusCode).toBe(200);
    const points = series.json().points as { sent: number; verified: number; refused: number }[];
    expect(points.length).toBeGreaterThanOrEqual(3);
    expect(points.reduce((sum, p) => sum + p.sent, 0)).toBe(4);
    expect(points.reduce((sum, p) => sum + p.refused, 0)).toBe(1);
  });

  it("is for admins only, and names the fields of a bad query", async () => {
    const forbidden = await get("/api/v1/analytics/summary/", user);
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json()).toMatchObject({ code: "forbidden", success: false });
    expect((await get("/api/v1/analytics/timeseries/", {})).json()).toMatchObject({ code: "unauthorized" });

    const bad = await get("/api/v1/analytics/summary/?since=forever&country=Costa", admin);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors.map((e: { field: string }) => e.field)).toEqual(["since", "country"]);
    const unknown = await get("/api/v1/analytics/summary/?colour=blue", admin);
    expect(unknown.json()).toMatchObject({ code: "validation_error" });
  });
});
