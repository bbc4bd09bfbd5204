import { type Kysely, sql } from "kysely";
import type { ChannelName } from "../channels/channel.js";
import type { Purpose } from "../otp/types.js";
import { once, type Runner } from "../store/prepared.js";
import type { Database } from "../store/schema.js";

export const GROUPINGS = ["day", "hour"] as const;
export type Grouping = (typeof GROUPINGS)[number];

const BUCKET_MS: Record<Grouping, number> = { day: 86_400_000, hour: 3_600_000 };

/** A report's range and filters; times are epoch milliseconds, `to` exclusive; buckets are UTC. */
export interface ReportQuery {
  from: number;
  to: number;
  groupBy: Grouping;
  purpose?: Purpose | undefined;
  channel?: ChannelName | undefined;
  /** ISO 3166 alpha-2, upper case. */
  country?: string | undefined;
}

/** What happened to the codes of a slice of time (or of a country, purpose, channel). */
export interface Counts {
  /** Codes the provider accepted (every send but those that failed at once). */
  sent: number;
  /** Of those, reported delivered (or read) by the provider's status callbacks. */
  delivered: number;
  /** Refused by the provider at once, or reported undelivered / failed later. */
  failed: number;
  verified: number;
  /** Never verified, and their lifetime is over. */
  expired: number;
  /** Killed by too many wrong tries. */
  locked: number;
  /** verified / sent, 0 when nothing was sent. */
  conversion_rate: number;
  /** What the provider charged (its price when it said, else the estimate), in US dollars. */
  spend_usd: number;
}

export interface Summary {
  from: string;
  to: string;
  filters: { purpose: string | null; channel: string | null; country: string | null };
  totals: Counts & { refused: number };
  /** From send to verification, over the verified codes; null when none. */
  time_to_verify: { median_seconds: number | null; p95_seconds: number | null; verified: number };
  by_country: (Counts & { country: string | null })[];
  by_purpose: (Counts & { purpose: string })[];
  by_channel: (Counts & { channel: string })[];
  /** Provider error codes of the failed sends, most frequent first. */
  failures_by_error_code: { error_code: string | null; count: number }[];
  /** Sends refused by a protection rule (rate limit, country, budget…), most frequent first. */
  refusals_by_rule: { rule: string; count: number }[];
}

export interface Timeseries {
  from: string;
  to: string;
  group_by: Grouping;
  filters: Summary["filters"];
  points: (Counts & { t: string; refused: number })[];
}

/** Figures of one slice (a bucket, a purpose, a channel, a country), from the codes or a roll-up. */
interface Slice {
  bucket: number;
  purpose: string;
  channel: string;
  country: string | null;
  sent: number;
  delivered: number;
  failed: number;
  verified: number;
  expired: number;
  locked: number;
  spend: number;
}

type Tally = Omit<Counts, "conversion_rate" | "spend_usd"> & { spend_micros: number };

const emptyTally = (): Tally => ({ sent: 0, delivered: 0, failed: 0, verified: 0, expired: 0, locked: 0, spend_micros: 0 });

const DAY_MS = BUCKET_MS.day;

/**
 * A UTC day is rolled up once it ended this long ago: by then its codes have expired or been verified
 * and the providers' late delivery reports are in.
 */
export const ROLLUP_LAG_MS = 2 * DAY_MS;

/** What a report sums, from whichever source. */
interface Parts {
  slices: Slice[];
  /** Seconds from send to verification → codes. */
  ttv: Map<number, number>;
  failures: Map<string | null, number>;
  refusals: { rule: string; bucket: number; count: number }[];
}

/**
 * Reports over the codes (`otp_codes`) and the refusals (`otp_refusals`) of a time range.
 *
 * Whole UTC days that ended more than ROLLUP_LAG_MS ago are read from daily roll-ups (`report_days` and
 * its failures and refusals tables: a few rows per day), written the first time a report or the
 * retention job needs them; the rest of the range (today, yesterday, partial days at its ends, hourly
 * series) is read from the codes themselves, in range scans on the `created_at` indexes. The roll-ups
 * hold no number, user or code, and outlive the codes retention deletes.
 */
export class Analytics {
  readonly #db: Kysely<Database>;
  readonly #runner: Runner;

  constructor(store: { db: Kysely<Database>; runner: Runner }) {
    this.#db = store.db;
    this.#runner = store.runner;
  }

  async summary(query: ReportQuery, now: number): Promise<Summary> {
    const parts = await this.#parts(query, now, false);
    const totals = emptyTally();
    const byCountry = new Map<string | null, Tally>();
    const byPurpose = new Map<string, Tally>();
    const byChannel = new Map<string, Tally>();
    for (const row of parts.slices) {
      add(totals, row);
      add(slot(byCountry, row.country), row);
      add(slot(byPurpose, row.purpose), row);
      add(slot(byChannel, row.channel), row);
    }
    const refusals = new Map<string, number>();
    for (const r of parts.refusals) refusals.set(r.rule, (refusals.get(r.rule) ?? 0) + r.count);
    return {
      ...range(query),
      totals: { ...counts(totals), refused: [...refusals.values()].reduce((a, b) => a + b, 0) },
      time_to_verify: percentiles(parts.ttv),
      by_country: [...byCountry].map(([country, t]) => ({ country, ...counts(t) })).sort((a, b) => b.sent - a.sent),
      by_purpose: [...byPurpose].map(([purpose, t]) => ({ purpose, ...counts(t) })).sort((a, b) => b.sent - a.sent),
      by_channel: [...byChannel].map(([channel, t]) => ({ channel, ...counts(t) })).sort((a, b) => b.sent - a.sent),
      failures_by_error_code: [...parts.failures]
        .map(([error_code, count]) => ({ error_code, count }))
        .sort((a, b) => b.count - a.count || String(a.error_code).localeCompare(String(b.error_code))),
      refusals_by_rule: [...refusals]
        .map(([rule, count]) => ({ rule, count }))
        .sort((a, b) => b.count - a.count || a.rule.localeCompare(b.rule)),
    };
  }

  async timeseries(query: ReportQuery, now: number): Promise<Timeseries> {
    const parts = await this.#parts(query, now, true);
    const size = BUCKET_MS[query.groupBy];
    const points = new Map<number, Tally & { refused: number }>();
    // Every bucket of the range, empty ones included, so a chart's axis is continuous.
    for (let t = Math.floor(query.from / size) * size; t < query.to; t += size) points.set(t, { ...emptyTally(), refused: 0 });
    for (const row of parts.slices) {
      const point = points.get(Math.floor(row.bucket / size) * size);
      if (point !== undefined) add(point, row);
    }
    for (const refusal of parts.refusals) {
      const point = points.get(Math.floor(refusal.bucket / size) * size);
      if (point !== undefined) point.refused += refusal.count;
    }
    return {
      ...range(query),
      group_by: query.groupBy,
      points: [...points].map(([t, tally]) => ({ t: new Date(t).toISOString(), ...counts(tally), refused: tally.refused })),
    };
  }

  /**
   * Rolls up every closed day before `before` that has codes or refusals and no roll-up yet (the
   * retention job calls it before deleting). Answers how many days it rolled up.
   */
  async rollUpBefore(before: number, now: number): Promise<number> {
    const closed = Math.min(Math.floor(before / DAY_MS), Math.floor((now - ROLLUP_LAG_MS) / DAY_MS)) * DAY_MS;
    const oldest = await this.#db
      .selectFrom("otp_codes")
      .select(sql<number | null>`min(created_at)`.as("t"))
      .executeTakeFirst()
      .then((r) => (r?.t == null ? null : Number(r.t)));
    const oldestRefusal = await this.#db
      .selectFrom("otp_refusals")
      .select(sql<number | null>`min(created_at)`.as("t"))
      .executeTakeFirst()
      .then((r) => (r?.t == null ? null : Number(r.t)));
    const first = Math.min(oldest ?? Number.POSITIVE_INFINITY, oldestRefusal ?? Number.POSITIVE_INFINITY);
    if (!Number.isFinite(first)) return 0;
    return this.#ensureRolledUp(Math.floor(first / DAY_MS) * DAY_MS, closed, now);
  }

  /** The report's figures: roll-ups for the closed whole days of the range, the codes for the rest. */
  async #parts(query: ReportQuery, now: number, series: boolean): Promise<Parts> {
    const firstDay = Math.ceil(query.from / DAY_MS) * DAY_MS;
    const closedEnd = Math.min(Math.floor(query.to / DAY_MS), Math.floor((now - ROLLUP_LAG_MS) / DAY_MS)) * DAY_MS;
    // An hourly series needs the codes themselves; so does a range without a closed whole day.
    const rolled = !(series && query.groupBy === "hour") && closedEnd > firstDay;
    const segments = rolled
      ? [
          [query.from, firstDay],
          [closedEnd, query.to],
        ].filter(([a, b]) => (a as number) < (b as number))
      : [[query.from, query.to]];
    const parts: Parts = { slices: [], ttv: new Map(), failures: new Map(), refusals: [] };
    if (rolled) {
      await this.#ensureRolledUp(firstDay, closedEnd, now);
      await this.#readRollups(query, firstDay, closedEnd, parts);
    }
    for (const [from, to] of segments) await this.#readCodes({ ...query, from: from as number, to: to as number }, now, parts);
    return parts;
  }

  /** Rolls up the days in [from, to) that have no roll-up yet; answers how many it wrote. */
  async #ensureRolledUp(from: number, to: number, now: number): Promise<number> {
    if (to <= from) return 0;
    const done = new Set(
      (await this.#db.selectFrom("report_rollups").select("day").where("day", ">=", from).where("day", "<", to).execute()).map((r) =>
        Number(r.day),
      ),
    );
    let written = 0;
    for (let day = from; day < to; day += DAY_MS) if (!done.has(day) && (await this.#rollUpDay(day, now))) written += 1;
    return written;
  }

  /**
   * One day's roll-up, in one transaction that starts by claiming the day: when another instance got
   * there first, nothing is written twice.
   */
  #rollUpDay(day: number, now: number): Promise<boolean> {
    const db = this.#db;
    const whole: ReportQuery = { from: day, to: day + DAY_MS, groupBy: "day" };
    const groups = this.#groupsQuery(whole, now);
    const ttv = this.#ttvQuery(whole, true);
    const failures = this.#failuresQuery(whole, true);
    const refusals = this.#refusalsQuery(whole, true);
    return this.#runner.transaction(function* () {
      const claimed = yield once(
        db
          .insertInto("report_rollups")
          .values({ day, created_at: now })
          .onConflict((oc) => oc.column("day").doNothing())
          .returning("day"),
      );
      if (claimed.rows.length === 0) return false;
      const histograms = new Map<string, Record<string, number>>();
      for (const row of (yield once(ttv)).rows as { purpose: string; channel: string; country: string | null; s: number; n: number }[]) {
        const key = JSON.stringify([row.purpose, row.channel, row.country ?? ""]);
        const histogram = histograms.get(key) ?? {};
        histogram[String(Number(row.s))] = Number(row.n);
        histograms.set(key, histogram);
      }
      const days = ((yield once(groups)).rows as unknown as RawRow[]).map((row) => {
        const slice = sliceOf(row);
        return {
          day,
          purpose: slice.purpose,
          channel: slice.channel,
          country: slice.country ?? "",
          sent: slice.sent,
          delivered: slice.delivered,
          failed: slice.failed,
          verified: slice.verified,
          expired: slice.expired,
          locked: slice.locked,
          spend_micros: slice.spend,
          ttv: JSON.stringify(histograms.get(JSON.stringify([slice.purpose, slice.channel, slice.country ?? ""])) ?? {}),
        };
      });
      const failed = (
        (yield once(failures)).rows as { purpose: string; channel: string; country: string | null; code: string | null; n: number }[]
      ).map((r) => ({ day, purpose: r.purpose, channel: r.channel, country: r.country ?? "", error_code: r.code ?? "", n: Number(r.n) }));
      const refused = ((yield once(refusals)).rows as { purpose: string; country: string | null; rule: string; n: number }[]).map((r) => ({
        day,
        purpose: r.purpose,
        country: r.country ?? "",
        rule: r.rule,
        n: Number(r.n),
      }));
      // In chunks: SQLite takes at most 32,766 values per statement.
      for (let i = 0; i < days.length; i += 500) yield once(db.insertInto("report_days").values(days.slice(i, i + 500)));
      for (let i = 0; i < failed.length; i += 1000) yield once(db.insertInto("report_day_failures").values(failed.slice(i, i + 1000)));
      for (let i = 0; i < refused.length; i += 1000) yield once(db.insertInto("report_day_refusals").values(refused.slice(i, i + 1000)));
      return true;
    });
  }

  async #readRollups(query: ReportQuery, from: number, to: number, parts: Parts): Promise<void> {
    let days = this.#db.selectFrom("report_days").selectAll().where("day", ">=", from).where("day", "<", to);
    let failures = this.#db
      .selectFrom("report_day_failures")
      .select(["error_code", sql<number>`sum(n)`.as("n")])
      .where("day", ">=", from)
      .where("day", "<", to)
      .groupBy("error_code");
    let refusals = this.#db
      .selectFrom("report_day_refusals")
      .select(["day", "rule", sql<number>`sum(n)`.as("n")])
      .where("day", ">=", from)
      .where("day", "<", to)
      .groupBy(["day", "rule"]);
    if (query.purpose !== undefined) {
      days = days.where("purpose", "=", query.purpose);
      failures = failures.where("purpose", "=", query.purpose);
      refusals = refusals.where("purpose", "=", query.purpose);
    }
    if (query.channel !== undefined) {
      days = days.where("channel", "=", query.channel);
      failures = failures.where("channel", "=", query.channel);
    }
    if (query.country !== undefined) {
      days = days.where("country", "=", query.country);
      failures = failures.where("country", "=", query.country);
      refusals = refusals.where("country", "=", query.country);
    }
    for (const row of await days.execute()) {
      parts.slices.push({
        bucket: Number(row.day),
        purpose: row.purpose,
        channel: row.channel,
        country: row.country === "" ? null : row.country,
        sent: Number(row.sent),
        delivered: Number(row.delivered),
        failed: Number(row.failed),
        verified: Number(row.verified),
        expired: Number(row.expired),
        locked: Number(row.locked),
        spend: Number(row.spend_micros),
      });
      for (const [seconds, n] of Object.entries(JSON.parse(row.ttv) as Record<string, number>)) {
        parts.ttv.set(Number(seconds), (parts.ttv.get(Number(seconds)) ?? 0) + n);
      }
    }
    for (const row of await failures.execute()) {
      const code = row.error_code === "" ? null : row.error_code;
      parts.failures.set(code, (parts.failures.get(code) ?? 0) + Number(row.n));
    }
    for (const row of await refusals.execute()) parts.refusals.push({ rule: row.rule, bucket: Number(row.day), count: Number(row.n) });
  }

  async #readCodes(query: ReportQuery, now: number, parts: Parts): Promise<void> {
    const [groups, ttv, failures, refusals] = await Promise.all([
      this.#groupsQuery(query, now).execute(),
      this.#ttvQuery(query, false).execute(),
      this.#failuresQuery(query, false).execute(),
      this.#refusalsQuery(query, false).execute(),
    ]);
    for (const row of groups as unknown as RawRow[]) parts.slices.push(sliceOf(row));
    for (const row of ttv as { s: number; n: number }[]) parts.ttv.set(Number(row.s), (parts.ttv.get(Number(row.s)) ?? 0) + Number(row.n));
    for (const row of failures as { code: string | null; n: number }[]) {
      parts.failures.set(row.code, (parts.failures.get(row.code) ?? 0) + Number(row.n));
    }
    for (const row of refusals as { rule: string; bucket: number; n: number }[]) {
      parts.refusals.push({ rule: row.rule, bucket: Number(row.bucket), count: Number(row.n) });
    }
  }

  #codes(query: ReportQuery) {
    let q = this.#db.selectFrom("otp_codes").where("created_at", ">=", query.from).where("created_at", "<", query.to);
    if (query.purpose !== undefined) q = q.where("purpose", "=", query.purpose);
    if (query.channel !== undefined) q = q.where("channel", "=", query.channel);
    if (query.country !== undefined) q = q.where("country", "=", query.country);
    return q;
  }

  /** Per bucket, purpose, channel and country: every count, in one range scan. */
  #groupsQuery(query: ReportQuery, now: number) {
    const size = BUCKET_MS[query.groupBy];
    const bucket = sql<number>`(created_at / ${sql.lit(size)}) * ${sql.lit(size)}`;
    const count = (condition: ReturnType<typeof sql>) => sql<number>`sum(case when ${condition} then 1 else 0 end)`;
    return this.#codes(query)
      .select([
        bucket.as("bucket"),
        "purpose",
        "channel",
        "country",
        sql<number>`count(*)`.as("total"),
        count(sql`status = 'failed'`).as("failed_now"),
        count(sql`delivery_status in ('delivered', 'read')`).as("delivered"),
        count(sql`status <> 'failed' and delivery_status in ('undelivered', 'failed')`).as("failed_later"),
        count(sql`verified_at is not null`).as("verified"),
        count(sql`verified_at is null and status <> 'failed' and status <> 'locked' and expires_at <= ${now}`).as("expired"),
        count(sql`status = 'locked'`).as("locked"),
        sql<number>`sum(case when status <> 'failed' then coalesce(price_micros, 0) else 0 end)`.as("spend"),
      ])
      .groupBy([bucket, "purpose", "channel", "country"]);
  }

  /** Whole seconds from send to verification, and how many codes took each (per slice for a roll-up). */
  #ttvQuery(query: ReportQuery, perSlice: boolean) {
    const seconds = sql<number>`(verified_at - created_at) / 1000`;
    const q = this.#codes(query).where("verified_at", "is not", null);
    return perSlice
      ? q
          .select(["purpose", "channel", "country", seconds.as("s"), sql<number>`count(*)`.as("n")])
          .groupBy(["purpose", "channel", "country", seconds])
      : q.select([seconds.as("s"), sql<number>`count(*)`.as("n")]).groupBy(seconds);
  }

  #failuresQuery(query: ReportQuery, perSlice: boolean) {
    const q = this.#codes(query).where((eb) =>
      eb.or([eb("status", "=", "failed"), eb("delivery_status", "in", ["undelivered", "failed"])]),
    );
    return perSlice
      ? q
          .select(["purpose", "channel", "country", "provider_error_code as code", sql<number>`count(*)`.as("n")])
          .groupBy(["purpose", "channel", "country", "provider_error_code"])
      : q.select(["provider_error_code as code", sql<number>`count(*)`.as("n")]).groupBy("provider_error_code");
  }

  #refusalsQuery(query: ReportQuery, perSlice: boolean) {
    const size = BUCKET_MS[query.groupBy];
    let q = this.#db.selectFrom("otp_refusals").where("created_at", ">=", query.from).where("created_at", "<", query.to);
    if (query.purpose !== undefined) q = q.where("purpose", "=", query.purpose);
    if (query.country !== undefined) q = q.where("country", "=", query.country);
    // A refusal has no channel: the channel filter leaves refusals as they are.
    if (perSlice) return q.select(["purpose", "country", "rule", sql<number>`count(*)`.as("n")]).groupBy(["purpose", "country", "rule"]);
    const bucket = sql<number>`(created_at / ${sql.lit(size)}) * ${sql.lit(size)}`;
    return q.select(["rule", bucket.as("bucket"), sql<number>`count(*)`.as("n")]).groupBy(["rule", bucket]);
  }
}

interface RawRow {
  bucket: number;
  purpose: string;
  channel: string;
  country: string | null;
  total: number;
  failed_now: number;
  delivered: number;
  failed_later: number;
  verified: number;
  expired: number;
  locked: number;
  spend: number;
}

function sliceOf(row: RawRow): Slice {
  const failedNow = Number(row.failed_now);
  return {
    bucket: Number(row.bucket),
    purpose: row.purpose,
    channel: row.channel,
    country: row.country,
    sent: Number(row.total) - failedNow,
    delivered: Number(row.delivered),
    failed: failedNow + Number(row.failed_later),
    verified: Number(row.verified),
    expired: Number(row.expired),
    locked: Number(row.locked),
    spend: Number(row.spend),
  };
}

/** Median and p95 from a histogram of whole seconds: exact to the second. */
function percentiles(histogram: Map<number, number>): Summary["time_to_verify"] {
  const sorted = [...histogram].sort((a, b) => a[0] - b[0]);
  const verified = sorted.reduce((sum, [, n]) => sum + n, 0);
  const at = (p: number): number | null => {
    if (verified === 0) return null;
    const rank = Math.max(1, Math.ceil(p * verified));
    let seen = 0;
    for (const [seconds, n] of sorted) {
      seen += n;
      if (seen >= rank) return seconds;
    }
    return sorted.at(-1)?.[0] ?? null;
  };
  return { median_seconds: at(0.5), p95_seconds: at(0.95), verified };
}

function slot<K>(map: Map<K, Tally>, key: K): Tally {
  const found = map.get(key);
  if (found !== undefined) return found;
  const tally = emptyTally();
  map.set(key, tally);
  return tally;
}

function add(tally: Tally, row: Slice): void {
  tally.sent += row.sent;
  tally.failed += row.failed;
  tally.delivered += row.delivered;
  tally.verified += row.verified;
  tally.expired += row.expired;
  tally.locked += row.locked;
  tally.spend_micros += row.spend;
}

function counts(tally: Tally): Counts {
  const { spend_micros, ...rest } = tally;
  return {
    ...rest,
    conversion_rate: tally.sent === 0 ? 0 : Math.round((tally.verified / tally.sent) * 10_000) / 10_000,
    spend_usd: Math.round(spend_micros) / 1_000_000,
  };
}

function range(query: ReportQuery): { from: string; to: string; filters: Summary["filters"] } {
  return {
    from: new Date(query.from).toISOString(),
    to: new Date(query.to).toISOString(),
    filters: { purpose: query.purpose ?? null, channel: query.channel ?? null, country: query.country ?? null },
  };
}
