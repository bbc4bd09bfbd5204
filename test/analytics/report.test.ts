import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reportQuery } from "../../src/analytics/range.js";
import { Analytics } from "../../src/analytics/report.js";
import { applyRetention } from "../../src/analytics/retention.js";
import { VericodeError } from "../../src/errors.js";
import type { SqlStore } from "../../src/store/sql-store.js";
import { DIALECTS, type TestDatabase } from "../support/databases.js";
import { DAY, DAY1, insertDataSet, NOW } from "./data.js";

const analyticsOf = (store: SqlStore) => new Analytics(store.reports);

for (const dialect of DIALECTS) {
  describe(`reports on ${dialect.name}`, () => {
    let db: TestDatabase | null = null;
    let store: SqlStore;
    let analytics: Analytics;

    beforeAll(async () => {
      db = await dialect.make();
      if (db === null) return;
      store = await db.createStore();
      analytics = analyticsOf(store);
      await insertDataSet((db as TestDatabase).sql());
    });
    afterAll(async () => {
      if (db === null) return;
      await store.close();
      await db.drop();
    });

    const range = { from: DAY1, to: DAY1 + 2 * DAY, groupBy: "day" as const };

    it("sums every figure of the range", async (context) => {
      if (db === null) context.skip();
      const summary = await analytics.summary(range, NOW);
      expect(summary.totals).toEqual({
        sent: 6,
        delivered: 4,
        failed: 2,
        verified: 3,
        expired: 2,
        locked: 1,
        conversion_rate: 0.5,
        spend_usd: 0.241,
        refused: 3,
      });
      expect(summary.time_to_verify).toEqual({ median_seconds: 30, p95_seconds: 90, verified: 3 });
      expect([...summary.failures_by_error_code].sort((a, b) => String(a.error_code).localeCompare(String(b.error_code)))).toEqual([
        { error_code: "21610", count: 1 },
        { error_code: "30003", count: 1 },
      ]);
      expect(summary.refusals_by_rule).toEqual([
        { rule: "number", count: 2 },
        { rule: "country", count: 1 },
      ]);
      expect(summary.by_country.map((c) => [c.country, c.sent, c.verified, c.conversion_rate])).toEqual([
        ["CR", 5, 3, 0.6],
        ["US", 1, 0, 0],
      ]);
      expect(summary.by_purpose.map((p) => [p.purpose, p.sent, p.verified])).toEqual([
        ["registration", 4, 2],
        ["login", 2, 1],
      ]);
      expect(summary.by_channel.map((c) => [c.channel, c.sent, c.delivered, c.spend_usd])).toEqual([
        ["sms", 5, 3, 0.236],
        ["whatsapp", 1, 1, 0.005],
      ]);
    });

    it("filters by country, purpose and channel (refusals have no channel)", async (context) => {
      if (db === null) context.skip();
      const cr = await analytics.summary({ ...range, country: "CR" }, NOW);
      expect(cr.totals).toMatchObject({ sent: 5, verified: 3, refused: 2, failed: 0 });
      const login = await analytics.summary({ ...range, purpose: "login" }, NOW);
      expect(login.totals).toMatchObject({ sent: 2, failed: 2, verified: 1, refused: 1 });
      const whatsapp = await analytics.summary({ ...range, channel: "whatsapp" }, NOW);
      expect(whatsapp.totals).toMatchObject({ sent: 1, verified: 1, conversion_rate: 1, refused: 3 });
      const none = await analytics.summary({ ...range, country: "DE" }, NOW);
      expect(none.totals).toMatchObject({ sent: 0, conversion_rate: 0, refused: 0 });
      expect(none.time_to_verify).toEqual({ median_seconds: null, p95_seconds: null, verified: 0 });
    });

    it("splits the range into UTC days or hours, empty buckets included", async (context) => {
      if (db === null) context.skip();
      const days = await analytics.timeseries(range, NOW);
      expect(days.points.map((p) => [p.t, p.sent, p.verified, p.failed, p.refused])).toEqual([
        ["2026-11-01T00:00:00.000Z", 4, 2, 0, 2],
        ["2026-11-02T00:00:00.000Z", 2, 1, 2, 1],
      ]);
      const hours = await analytics.timeseries({ from: DAY1, to: DAY1 + 4 * 3_600_000, groupBy: "hour" }, NOW);
      expect(hours.points.map((p) => p.sent)).toEqual([0, 1, 3, 0]);
    });

    it("reads closed days from daily roll-ups, with the same figures, whatever the range's edges", async (context) => {
      if (db === null) context.skip();
      const later = NOW + 30 * DAY;
      const fromCodes = await analytics.summary(range, NOW);
      const fromRollups = await analytics.summary(range, later);
      expect(fromRollups).toEqual(fromCodes);
      const rolled = await (db as TestDatabase).sql().selectFrom("report_rollups").select("day").orderBy("day").execute();
      expect(rolled.map((r) => Number(r.day))).toEqual([DAY1, DAY1 + DAY]);
      expect(await (db as TestDatabase).sql().selectFrom("report_days").select("sent").execute()).not.toHaveLength(0);
      // Half of day 1 from the codes, day 2 from its roll-up.
      const half = { ...range, from: DAY1 + 2 * 3_600_000 + 30 * 60_000 };
      expect((await analytics.summary(half, later)).totals).toMatchObject({ sent: 4, verified: 1, failed: 2, locked: 1, refused: 1 });
      expect((await analytics.summary({ ...range, country: "CR", channel: "sms" }, later)).totals).toMatchObject({
        sent: 4,
        verified: 2,
        locked: 1,
        refused: 2,
      });
      expect((await analytics.timeseries(range, later)).points.map((p) => [p.sent, p.refused])).toEqual([
        [4, 2],
        [2, 1],
      ]);
      // A second report, or another instance, rolls nothing up twice.
      expect(await analytics.rollUpBefore(DAY1 + 2 * DAY, later)).toBe(0);
    });

    it("purges what is older than the cut-off, in batches, and a second run finds nothing", async (context) => {
      if (db === null) context.skip();
      const first = await store.purge(DAY1 + DAY, { batch: 2 });
      expect(first).toMatchObject({ codes: 4, refusals: 2 });
      expect(await store.purge(DAY1 + DAY, { batch: 2 })).toEqual({ codes: 0, refusals: 0, challenges: 0 });
      const left = await analytics.summary(range, NOW);
      expect(left.totals).toMatchObject({ sent: 2, refused: 1 });
      // The roll-ups outlive the codes: the whole range's figures are still there.
      expect((await analytics.summary(range, NOW + 30 * DAY)).totals).toMatchObject({ sent: 6, verified: 3, refused: 3 });
    });
  });
}

describe("a report's range and filters", () => {
  const now = Date.parse("2026-11-25T12:00:00Z");

  it("defaults to the last 7 days by day, and reads since, from and to", () => {
    expect(reportQuery({}, now)).toMatchObject({ from: now - 7 * DAY, to: now, groupBy: "day" });
    expect(reportQuery({ since: "24h", group_by: "hour" }, now)).toMatchObject({ from: now - DAY, groupBy: "hour" });
    expect(reportQuery({ from: "2026-11-01", to: "2026-11-02", country: "cr" }, now)).toMatchObject({
      from: Date.parse("2026-11-01"),
      to: Date.parse("2026-11-02"),
      country: "CR",
    });
  });

  it("takes since as an ISO 8601 date or time too, as from (issue 16): the same range either way", () => {
    expect(reportQuery({ since: "2026-11-01" }, now)).toEqual(reportQuery({ from: "2026-11-01" }, now));
    expect(reportQuery({ since: "2026-11-20T06:30:00Z", to: "2026-11-21" }, now)).toMatchObject({
      from: Date.parse("2026-11-20T06:30:00Z"),
      to: Date.parse("2026-11-21"),
    });
    // Neither a duration nor an ISO date: `12` or `May 3`, which Date.parse would take, are refused.
    for (const since of ["12", "May 3", "7x", "2026-13-45"]) {
      expect(() => reportQuery({ since }, now), since).toThrow(/since is not valid: use a duration such as 90m/);
    }
    expect(() => reportQuery({ from: "12" }, now)).toThrow(/from is not valid: use an ISO 8601 date or time/);
    expect(() => reportQuery({ since: "2026-12-01" }, now)).toThrow(/since is not before to/);
  });

  it("names every bad field in one validation_error", () => {
    let error: unknown;
    try {
      reportQuery({ since: "7 days", group_by: "week", purpose: "signup", channel: "fax", country: "Costa Rica" }, now);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(VericodeError);
    const fields = ((error as VericodeError).extra.errors as { field: string }[]).map((e) => e.field);
    expect(fields).toEqual(["since", "group_by", "purpose", "channel", "country"]);
    expect(() => reportQuery({ from: "2026-11-02", to: "2026-11-01" }, now)).toThrow(VericodeError);
    expect(() => reportQuery({ since: "60d", group_by: "hour" }, now)).toThrow(/at most 31 days|more than 31 days/);
  });
});

for (const dialect of DIALECTS) {
  describe(`retention on ${dialect.name}, run by two instances at once`, () => {
    it("rolls each day up once and deletes each record once", async (context) => {
      const db = await dialect.make();
      if (db === null) return context.skip();
      const [a, b] = [await db.createStore(), await db.createStore()];
      try {
        await insertDataSet(db.sql());
        const later = NOW + 40 * DAY;
        const runs = await Promise.all([
          applyRetention({ store: a, analytics: analyticsOf(a) }, 30, later),
          applyRetention({ store: b, analytics: analyticsOf(b) }, 30, later),
        ]);
        expect(runs[0].before.getTime()).toBe(runs[1].before.getTime());
        // Every day from the first record to the cut-off (2026-11-13), the empty ones marked too.
        expect(runs[0].rolledUp + runs[1].rolledUp).toBe(12);
        expect(runs[0].codes + runs[1].codes).toBe(7);
        expect(runs[0].refusals + runs[1].refusals).toBe(3);
        expect(await db.sql().selectFrom("report_rollups").select("day").execute()).toHaveLength(12);
        // The figures survive in the roll-ups, counted once.
        const summary = await analyticsOf(b).summary({ from: DAY1, to: DAY1 + 2 * DAY, groupBy: "day" }, later);
        expect(summary.totals).toMatchObject({ sent: 6, verified: 3, failed: 2, refused: 3, spend_usd: 0.241 });
        expect(summary.time_to_verify).toEqual({ median_seconds: 30, p95_seconds: 90, verified: 3 });
      } finally {
        await a.close();
        await b.close();
        await db.drop();
      }
    });
  });
}
