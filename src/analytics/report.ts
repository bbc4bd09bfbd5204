import { type Kysely, sql } from "kysely";
import type { ChannelName } from "../channels/channel.js";
import type { Purpose } from "../otp/types.js";
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

interface GroupRow {
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

type Tally = Omit<Counts, "conversion_rate" | "spend_usd"> & { spend_micros: number };

const emptyTally = (): Tally => ({ sent: 0, delivered: 0, failed: 0, verified: 0, expired: 0, locked: 0, spend_micros: 0 });

/**
 * Reports over the codes (`otp_codes`) and the refusals (`otp_refusals`) of a time range. Three range
 * scans on the `created_at` indexes, whatever is asked: one GROUP BY (bucket, purpose, channel,
 * country) that every figure but two is summed from, one histogram of seconds from send to
 * verification (exact percentiles to the second, on both dialects), one of refusals by rule; the
 * failures by error code come from a fourth, on the failed rows only.
 */
export class Analytics {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async summary(query: ReportQuery, now: number): Promise<Summary> {
    const [rows, ttv, failures, refusals] = await Promise.all([
      this.#groups(query, now),
      this.#timeToVerify(query),
      this.#failures(query),
      this.#refusals(query, false),
    ]);
    const totals = emptyTally();
    const byCountry = new Map<string | null, Tally>();
    const byPurpose = new Map<string, Tally>();
    const byChannel = new Map<string, Tally>();
    for (const row of rows) {
      add(totals, row);
      add(slot(byCountry, row.country), row);
      add(slot(byPurpose, row.purpose), row);
      add(slot(byChannel, row.channel), row);
    }
    const refused = refusals.reduce((sum, r) => sum + r.count, 0);
    return {
      ...range(query),
      totals: { ...counts(totals), refused },
      time_to_verify: ttv,
      by_country: [...byCountry].map(([country, t]) => ({ country, ...counts(t) })).sort((a, b) => b.sent - a.sent),
      by_purpose: [...byPurpose].map(([purpose, t]) => ({ purpose, ...counts(t) })).sort((a, b) => b.sent - a.sent),
      by_channel: [...byChannel].map(([channel, t]) => ({ channel, ...counts(t) })).sort((a, b) => b.sent - a.sent),
      failures_by_error_code: failures,
      refusals_by_rule: refusals.map(({ rule, count }) => ({ rule, count })),
    };
  }

  async timeseries(query: ReportQuery, now: number): Promise<Timeseries> {
    const [rows, refusals] = await Promise.all([this.#groups(query, now), this.#refusals(query, true)]);
    const size = BUCKET_MS[query.groupBy];
    const points = new Map<number, Tally & { refused: number }>();
    // Every bucket of the range, empty ones included, so a chart's axis is continuous.
    for (let t = Math.floor(query.from / size) * size; t < query.to; t += size) points.set(t, { ...emptyTally(), refused: 0 });
    for (const row of rows) {
      const point = points.get(Number(row.bucket));
      if (point !== undefined) add(point, row);
    }
    for (const refusal of refusals) {
      const point = points.get(Number(refusal.bucket));
      if (point !== undefined) point.refused += refusal.count;
    }
    return {
      ...range(query),
      group_by: query.groupBy,
      points: [...points].map(([t, tally]) => ({ t: new Date(t).toISOString(), ...counts(tally), refused: tally.refused })),
    };
  }

  #filtered(query: ReportQuery) {
    let q = this.#db.selectFrom("otp_codes").where("created_at", ">=", query.from).where("created_at", "<", query.to);
    if (query.purpose !== undefined) q = q.where("purpose", "=", query.purpose);
    if (query.channel !== undefined) q = q.where("channel", "=", query.channel);
    if (query.country !== undefined) q = q.where("country", "=", query.country);
    return q;
  }

  async #groups(query: ReportQuery, now: number): Promise<GroupRow[]> {
    const size = BUCKET_MS[query.groupBy];
    const bucket = sql<number>`(created_at / ${sql.lit(size)}) * ${sql.lit(size)}`;
    const count = (condition: ReturnType<typeof sql>) => sql<number>`sum(case when ${condition} then 1 else 0 end)`;
    const rows = await this.#filtered(query)
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
      .groupBy([bucket, "purpose", "channel", "country"])
      .execute();
    return rows as GroupRow[];
  }

  async #timeToVerify(query: ReportQuery): Promise<Summary["time_to_verify"]> {
    const seconds = sql<number>`(verified_at - created_at) / 1000`;
    const histogram = await this.#filtered(query)
      .where("verified_at", "is not", null)
      .select([seconds.as("s"), sql<number>`count(*)`.as("n")])
      .groupBy(seconds)
      .orderBy(seconds)
      .execute();
    const verified = histogram.reduce((sum, row) => sum + Number(row.n), 0);
    const percentile = (p: number): number | null => {
      if (verified === 0) return null;
      const rank = Math.max(1, Math.ceil(p * verified));
      let seen = 0;
      for (const row of histogram) {
        seen += Number(row.n);
        if (seen >= rank) return Number(row.s);
      }
      return Number(histogram.at(-1)?.s ?? 0);
    };
    return { median_seconds: percentile(0.5), p95_seconds: percentile(0.95), verified };
  }

  async #failures(query: ReportQuery): Promise<Summary["failures_by_error_code"]> {
    const rows = await this.#filtered(query)
      .where((eb) => eb.or([eb("status", "=", "failed"), eb("delivery_status", "in", ["undelivered", "failed"])]))
      .select(["provider_error_code", sql<number>`count(*)`.as("n")])
      .groupBy("provider_error_code")
      .execute();
    return rows.map((r) => ({ error_code: r.provider_error_code, count: Number(r.n) })).sort((a, b) => b.count - a.count);
  }

  async #refusals(query: ReportQuery, byBucket: boolean): Promise<{ rule: string; count: number; bucket: number }[]> {
    const size = BUCKET_MS[query.groupBy];
    const bucket = byBucket ? sql<number>`(created_at / ${sql.lit(size)}) * ${sql.lit(size)}` : sql<number>`0`;
    let q = this.#db.selectFrom("otp_refusals").where("created_at", ">=", query.from).where("created_at", "<", query.to);
    if (query.purpose !== undefined) q = q.where("purpose", "=", query.purpose);
    if (query.country !== undefined) q = q.where("country", "=", query.country);
    // A refusal has no channel: the channel filter leaves refusals as they are.
    const rows = await q
      .select(["rule", bucket.as("bucket"), sql<number>`count(*)`.as("n")])
      .groupBy(byBucket ? ["rule", bucket] : ["rule"])
      .execute();
    return rows.map((r) => ({ rule: r.rule, bucket: Number(r.bucket), count: Number(r.n) })).sort((a, b) => b.count - a.count);
  }
}

function slot<K>(map: Map<K, Tally>, key: K): Tally {
  const found = map.get(key);
  if (found !== undefined) return found;
  const tally = emptyTally();
  map.set(key, tally);
  return tally;
}

function add(tally: Tally, row: GroupRow): void {
  const failedNow = Number(row.failed_now);
  tally.sent += Number(row.total) - failedNow;
  tally.failed += failedNow + Number(row.failed_later);
  tally.delivered += Number(row.delivered);
  tally.verified += Number(row.verified);
  tally.expired += Number(row.expired);
  tally.locked += Number(row.locked);
  tally.spend_micros += Number(row.spend);
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
