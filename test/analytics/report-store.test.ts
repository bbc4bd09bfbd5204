import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Analytics } from "../../src/analytics/report.js";
import type { Runner, Step } from "../../src/store/prepared.js";
import { SqlReportStore } from "../../src/store/report-store.js";
import { DIALECTS, type RawDatabase, type TestDatabase } from "../support/databases.js";
import { DAY, DAY1 } from "./data.js";

const HOUR = 3_600_000;
/** The day after: its codes have expired, but the day is not closed yet (reports read the codes). */
const OPEN = DAY1 + DAY + HOUR;
/** Long after the day: it is closed, reports read its roll-up. */
const LATER = DAY1 + 10 * DAY;

/** One code every 20 minutes of DAY1, in two slices, so that a slice's codes fall in many windows of the roll-up. */
async function insertDay(store: RawDatabase): Promise<void> {
  const codes = Array.from({ length: 72 }, (_, i) => {
    const created = DAY1 + i * 20 * 60_000 + 1234;
    const verified = i % 3 === 0;
    const failed = i % 7 === 0 && !verified;
    return {
      id: `otp_${String(i).padStart(32, "0")}`,
      user_id: `usr_${i}`,
      phone_number: `+5068888${String(i).padStart(4, "0")}`,
      purpose: i % 2 === 0 ? "login" : "registration",
      code_hash: "x".repeat(64),
      channel: "sms",
      status: failed ? "failed" : verified ? "verified" : "sent",
      created_at: created,
      expires_at: created + 600_000,
      verified_at: verified ? created + ((i % 5) + 1) * 7000 : null,
      provider_message_id: failed ? null : `SM${i}`,
      provider_error_code: failed ? (i % 2 === 0 ? "21610" : null) : null,
      delivery_status: failed ? null : "delivered",
      updated_at: created,
      country: "CR",
      price_micros: failed ? null : 57_000,
      price_final: 1,
      fallback_from: null,
    };
  });
  await store.db.insertInto("otp_codes").values(codes).execute();
  const refusals = Array.from({ length: 30 }, (_, i) => ({
    id: `ref_${i}`,
    created_at: DAY1 + i * 45 * 60_000,
    rule: i % 3 === 0 ? "country" : "number",
    code: "rate_limited",
    purpose: "login",
    user_id: `usr_r${i}`,
    country: "CR",
    phone_prefix: null,
    ip: "203.0.113.7",
  }));
  await store.db.insertInto("otp_refusals").values(refusals).execute();
}

/** The store's runner, recording the SQL of every statement run inside a transaction. */
function recording(runner: Runner, before?: () => Promise<void>): Runner & { written: string[] } {
  const written: string[] = [];
  return {
    written,
    one: (query) => runner.one(query),
    read: (step) => runner.read(step),
    async transaction<T>(step: () => Step<T>): Promise<T> {
      await before?.();
      return runner.transaction(function* () {
        const steps = step();
        let next = steps.next();
        while (!next.done) {
          written.push(next.value.query.sql);
          next = steps.next(yield next.value);
        }
        return next.value;
      });
    },
  };
}

for (const dialect of DIALECTS) {
  describe(`the reports' store on ${dialect.name}`, () => {
    let db: TestDatabase | null = null;
    let store: RawDatabase;
    let other: RawDatabase;

    beforeAll(async () => {
      db = await dialect.make();
      if (db === null) return;
      await (await db.createStore()).close();
      store = db.raw();
      other = db.connect();
      await insertDay(store);
    });
    afterAll(async () => {
      if (db === null) return;
      await other.close();
      await db.drop();
    });

    it("reads a day before claiming it: the write transaction only claims and inserts a few rows", async (context) => {
      if (db === null) return context.skip();
      const fromCodes = await new Analytics(new SqlReportStore(store.db, store.runner)).summary(
        { from: DAY1, to: DAY1 + DAY, groupBy: "day" },
        OPEN,
      );
      const runner = recording(store.runner);
      const reports = new SqlReportStore(store.db, runner);
      expect(await reports.rollUpDay(DAY1, LATER)).toBe(true);
      expect(runner.written.length).toBeGreaterThan(1);
      expect(runner.written.length).toBeLessThanOrEqual(4);
      for (const text of runner.written) expect(text).toMatch(/^insert into "report_/);
      // Merged over its windows: one row per slice, the same figures as the codes.
      expect(await store.db.selectFrom("report_days").select(["purpose", "sent"]).orderBy("purpose").execute()).toHaveLength(2);
      const fromRollups = await new Analytics(reports).summary({ from: DAY1, to: DAY1 + DAY, groupBy: "day" }, LATER);
      expect(fromRollups).toEqual(fromCodes);
      expect(fromCodes.totals).toMatchObject({ sent: 65, failed: 7, verified: 24, refused: 30 });
      const series = await new Analytics(reports).timeseries({ from: DAY1, to: DAY1 + DAY, groupBy: "hour" }, LATER);
      expect(series.points.reduce((sum, p) => sum + p.sent, 0)).toBe(65);
      expect(series.points).toHaveLength(24);
      expect(series.points[0]).toMatchObject({ sent: 3, refused: 2 });
      expect(await reports.rolledUpDays(DAY1 - DAY, DAY1 + 2 * DAY)).toEqual([DAY1]);
      expect(await reports.oldestRecord()).toBe(DAY1);
    });

    it("drops what it read when another instance claimed the day in between", async (context) => {
      if (db === null) return context.skip();
      const day = DAY1 + DAY;
      await store.db
        .insertInto("otp_refusals")
        .values({
          id: "ref_next",
          created_at: day + HOUR,
          rule: "number",
          code: "rate_limited",
          purpose: "login",
          user_id: "usr_next",
          country: "CR",
          phone_prefix: null,
          ip: "203.0.113.7",
        })
        .execute();
      const first = new SqlReportStore(other.db, other.runner);
      // The other instance rolls the day up after this one has read it, before this one claims it.
      const late = new SqlReportStore(
        store.db,
        recording(store.runner, async () => {
          expect(await first.rollUpDay(day, LATER)).toBe(true);
        }),
      );
      expect(await late.rollUpDay(day, LATER)).toBe(false);
      const refusals = await store.db.selectFrom("report_day_refusals").select(["rule", "n"]).where("day", "=", day).execute();
      expect(refusals.map((r: { rule: string; n: unknown }) => [r.rule, Number(r.n)])).toEqual([["number", 1]]);
      expect(await first.rolledUpDays(day, day + DAY)).toEqual([day]);
    });
  });
}
