import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { FakeTwilio } from "../support/twilio-server.js";
import { lastCode, mobile, startVerifyService, type VerifyTestService } from "../support/verify.js";

/** Verify traffic in vericode's reports: counted like any code, and filterable by service. */
describe("Verify v2 in analytics and metrics", () => {
  const fake = new FakeTwilio();
  let db: TestDatabase;
  let service: VerifyTestService;

  beforeAll(async () => {
    db = sqliteDatabase();
    await fake.start();
    service = await startVerifyService(db, fake, { ALLOWED_COUNTRIES: "CR" });
  });
  afterAll(async () => {
    await service.close();
    await fake.stop();
    await db.drop();
  });

  it("sends, approvals and refusals of one service are its figures; another service's are not", async () => {
    const client = service.client();
    const mineSid = (await client.verify.v2.services.create({ friendlyName: "Mine" })).sid;
    const otherSid = (await client.verify.v2.services.create({ friendlyName: "Other" })).sid;
    const mine = client.verify.v2.services(mineSid);
    const other = client.verify.v2.services(otherSid);
    for (let i = 0; i < 3; i++) {
      const to = mobile();
      await mine.verifications.create({ to, channel: "sms" });
      if (i < 2) await mine.verificationChecks.create({ to, code: lastCode(fake, to) });
    }
    await mine.verifications.create({ to: "+14155552671", channel: "sms" }).catch(() => {});
    await other.verifications.create({ to: mobile(), channel: "sms" });

    const admin = service.vericode.tokens.issueAccess({ id: "usr_admin", role: "admin" });
    const summary = async (query: string) => {
      const response = await service.app.inject({
        url: `/api/v1/analytics/summary/?${query}`,
        headers: { authorization: `Bearer ${admin}` },
      });
      expect(response.statusCode, response.body).toBe(200);
      return response.json() as { totals: Record<string, number>; by_purpose: { purpose: string; sent: number }[] };
    };
    const figures = await summary(`service=${mineSid}`);
    expect(figures.totals).toMatchObject({ sent: 3, verified: 2, refused: 1 });
    expect(figures.by_purpose).toEqual([expect.objectContaining({ purpose: `verify:${mineSid}`, sent: 3 })]);
    expect((await summary(`purpose=verify:${otherSid}`)).totals).toMatchObject({ sent: 1, verified: 0 });
    const all = await summary("since=1d");
    expect(all.totals.sent).toBe(4);
    const bad = await service.app.inject({ url: "/api/v1/analytics/summary/?service=nope", headers: { authorization: `Bearer ${admin}` } });
    expect(bad.json()).toMatchObject({ code: "validation_error", errors: [expect.objectContaining({ field: "service" })] });

    const metrics = await service.app.inject({ url: "/metrics" });
    expect(metrics.body).toMatch(/vericode_otp_sends_total\{[^}]*channel="sms"[^}]*\} [1-9]/);
  });
});
