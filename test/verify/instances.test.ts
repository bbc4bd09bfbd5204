import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS, type TestDatabase } from "../support/databases.js";
import { FakeTwilio } from "../support/twilio-server.js";
import { lastCode, mobile, startVerifyService, type VerifyTestService } from "../support/verify.js";

type Outcome = { ok: true; value: { sid: string; status: string } } | { ok: false; status: number; code: number };

async function settle(call: Promise<{ sid: string; status: string }>): Promise<Outcome> {
  try {
    return { ok: true, value: await call };
  } catch (error) {
    const e = error as { status: number; code: number };
    return { ok: false, status: e.status, code: e.code };
  }
}

/**
 * Two vericode instances on one database, raced through the official SDK: one pending verification per
 * number however many starts arrive at once, and one approval however many right codes arrive at once.
 */
describe.each(DIALECTS)("Verify v2, two instances on one $name database", ({ name, make }) => {
  const fake = new FakeTwilio();
  let db: TestDatabase | null = null;
  let a: VerifyTestService;
  let b: VerifyTestService;
  let serviceSid: string;

  beforeAll(async () => {
    // SQLite's instances are two services in one process on one file (its own write lock serializes them).
    db = await make();
    if (db === null) return;
    await fake.start();
    a = await startVerifyService(db, fake);
    b = await startVerifyService(db, fake);
    serviceSid = (await a.client().verify.v2.services.create({ friendlyName: "Raced" })).sid;
  });
  afterAll(async () => {
    if (db === null) return;
    await a.close();
    await b.close();
    await fake.stop();
    await db.drop();
  });

  it("20 parallel starts for one number → one verification: 5 sends, 15 refused with 60203", async () => {
    if (db === null) return;
    const to = mobile();
    const services = [a, b].map((instance) => instance.client().verify.v2.services(serviceSid));
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        settle(services[i % 2]?.verifications.create({ to, channel: "sms" }) as Promise<{ sid: string; status: string }>),
      ),
    );
    const sids = new Set(outcomes.flatMap((o) => (o.ok ? [o.value.sid] : [])));
    expect(sids.size).toBe(1);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(5);
    expect(outcomes.filter((o) => !o.ok).map((o) => !o.ok && o.code)).toEqual(Array(15).fill(60203));
    expect(fake.messages.filter((m) => m.to === to)).toHaveLength(5);
    const rows = await db.sql().selectFrom("verifications").select(["sid", "send_count"]).where("to_addr", "=", to).execute();
    expect(rows).toEqual([{ sid: [...sids][0], send_count: 5 }]);
  });

  it(`20 parallel checks of the right code → exactly one approval (${name})`, async () => {
    if (db === null) return;
    const to = mobile();
    const services = [a, b].map((instance) => instance.client().verify.v2.services(serviceSid));
    const started = await services[0]?.verifications.create({ to, channel: "sms" });
    const code = lastCode(fake, to);
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        settle(services[i % 2]?.verificationChecks.create({ to, code }) as Promise<{ sid: string; status: string }>),
      ),
    );
    const approved = outcomes.filter((o) => o.ok && o.value.status === "approved");
    expect(approved).toHaveLength(1);
    // The others find it over: 404 / 20404 once approved, or 60202 for a check past the fifth; never a server error.
    for (const o of outcomes) if (!o.ok) expect([20404, 60202]).toContain(o.code);
    const counted = await db
      .sql()
      .selectFrom("verifications")
      .select("check_count")
      .where("sid", "=", started?.sid ?? "")
      .executeTakeFirst();
    expect(Number(counted?.check_count)).toBeLessThanOrEqual(5);
    const verified = await db
      .sql()
      .selectFrom("otp_codes")
      .select(sql<number>`count(*)`.as("n"))
      .where("user_id", "=", started?.sid ?? "")
      .where("status", "=", "verified")
      .executeTakeFirst();
    expect(Number(verified?.n)).toBe(1);
  });
});
