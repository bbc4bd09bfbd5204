import { type Kysely, sql } from "kysely";
import { once, type Runner } from "./prepared.js";
import type { Database } from "./schema.js";

/** The codes and refusals a report reads: a time range (epoch milliseconds, `to` exclusive) and its filters. */
export interface ReportFilter {
  from: number;
  to: number;
  purpose?: string | undefined;
  /** Refusals have no channel: this filter leaves them as they are. */
  channel?: string | undefined;
  /** ISO 3166 alpha-2, upper case. */
  country?: string | undefined;
}

/** The figures of one slice: a bucket of time (UTC), a purpose, a channel and a country. */
export interface Slice {
  /** Start of the bucket, epoch milliseconds. */
  bucket: number;
  purpose: string;
  channel: string;
  /** null when unknown (the email channel). */
  country: string | null;
  /** Codes the provider accepted (every send but those that failed at once). */
  sent: number;
  /** Of those, reported delivered (or read) by the provider. */
  delivered: number;
  /** Refused by the provider at once, or reported undelivered / failed later. */
  failed: number;
  verified: number;
  /** Never verified, and their lifetime is over. */
  expired: number;
  /** Ended by too many wrong tries. */
  locked: number;
  /** What the provider charged (its price when it said, else the estimate), in millionths of a US dollar. */
  spendMicros: number;
}

/** What a report sums, from the codes or from the roll-ups. Rows may repeat a key: the reader adds them up. */
export interface Figures {
  slices: Slice[];
  /** Whole seconds from send to verification, and how many codes took that long. */
  timeToVerify: { seconds: number; count: number }[];
  /** Provider error codes of the failed sends (null: the provider gave none). */
  failures: { errorCode: string | null; count: number }[];
  /** Sends refused by a protection rule, per rule and bucket. */
  refusals: { rule: string; bucket: number; count: number }[];
}

/**
 * The reports' data: range scans of the codes (`otp_codes`) and refusals (`otp_refusals`), and the daily
 * roll-ups (`report_days` and its failures and refusals tables) that outlive them. Deciding which days to
 * roll up and summing the figures is the caller's work (analytics/report.ts).
 */
export interface ReportStore {
  /** The codes and refusals of the range, in buckets of `bucketMs`; a code counts as expired once its lifetime ended by `now`. */
  readCodes(filter: ReportFilter, bucketMs: number, now: number): Promise<Figures>;
  /** The roll-ups of the whole UTC days in the range, in buckets of a day. */
  readRollups(filter: ReportFilter): Promise<Figures>;
  /** The days (UTC midnights) in [from, to) that have a roll-up. */
  rolledUpDays(from: number, to: number): Promise<number[]>;
  /** The creation time of the oldest code or refusal; null when there is none. */
  oldestRecord(): Promise<number | null>;
  /**
   * Rolls up one UTC day. Reads its figures first, with no write lock, then claims the day and writes its
   * few rows in one short transaction. Resolves false, writing nothing, when another instance claimed
   * the day first: a day is rolled up once.
   */
  rollUpDay(day: number, now: number): Promise<boolean>;
}

const DAY_MS = 86_400_000;

/**
 * A roll-up reads its day in windows, each its own statement, sized to take about this long: on SQLite
 * a read runs synchronously on the event loop, so a day of a million codes read at once (2.1 s) would
 * stall every request of the process; windows of a few milliseconds, with a turn of the loop between
 * them, do not.
 */
const WINDOW_TARGET_MS = 15;
const FIRST_WINDOW_MS = 10 * 60_000;
const MIN_WINDOW_MS = 60_000;

/** One day's roll-up, merged over its windows: per slice, per failure, per refusal key. */
interface DayRollup {
  slices: Map<string, Slice & { ttv: Record<string, number> }>;
  failures: Map<string, { purpose: string; channel: string; country: string; error_code: string; n: number }>;
  refusals: Map<string, { purpose: string; country: string; rule: string; n: number }>;
}

/** The ReportStore in SQL, the same on SQLite and PostgreSQL. */
export class SqlReportStore implements ReportStore {
  readonly #db: Kysely<Database>;
  readonly #runner: Runner;

  constructor(db: Kysely<Database>, runner: Runner) {
    this.#db = db;
    this.#runner = runner;
  }

  async readCodes(filter: ReportFilter, bucketMs: number, now: number): Promise<Figures> {
    const [groups, ttv, failures, refusals] = await Promise.all([
      this.#groupsQuery(filter, bucketMs, now).execute(),
      this.#codes(filter)
        .where("verified_at", "is not", null)
        .select([seconds.as("s"), sql<number>`count(*)`.as("n")])
        .groupBy(seconds)
        .execute(),
      this.#failedCodes(filter)
        .select(["provider_error_code as code", sql<number>`count(*)`.as("n")])
        .groupBy("provider_error_code")
        .execute(),
      this.#refusals(filter)
        .select(["rule", bucketOf(bucketMs).as("bucket"), sql<number>`count(*)`.as("n")])
        .groupBy(["rule", bucketOf(bucketMs)])
        .execute(),
    ]);
    return {
      slices: groups.map(sliceOf),
      timeToVerify: ttv.map((r) => ({ seconds: Number(r.s), count: Number(r.n) })),
      failures: failures.map((r) => ({ errorCode: r.code, count: Number(r.n) })),
      refusals: refusals.map((r) => ({ rule: r.rule, bucket: Number(r.bucket), count: Number(r.n) })),
    };
  }

  async readRollups(filter: ReportFilter): Promise<Figures> {
    const { from, to, purpose, channel, country } = filter;
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
    if (purpose !== undefined) {
      days = days.where("purpose", "=", purpose);
      failures = failures.where("purpose", "=", purpose);
      refusals = refusals.where("purpose", "=", purpose);
    }
    if (channel !== undefined) {
      days = days.where("channel", "=", channel);
      failures = failures.where("channel", "=", channel);
    }
    if (country !== undefined) {
      days = days.where("country", "=", country);
      failures = failures.where("country", "=", country);
      refusals = refusals.where("country", "=", country);
    }
    const figures: Figures = { slices: [], timeToVerify: [], failures: [], refusals: [] };
    for (const row of await days.execute()) {
      figures.slices.push({
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
        spendMicros: Number(row.spend_micros),
      });
      for (const [s, n] of Object.entries(JSON.parse(row.ttv) as Record<string, number>)) {
        figures.timeToVerify.push({ seconds: Number(s), count: n });
      }
    }
    for (const row of await failures.execute()) {
      figures.failures.push({ errorCode: row.error_code === "" ? null : row.error_code, count: Number(row.n) });
    }
    for (const row of await refusals.execute()) figures.refusals.push({ rule: row.rule, bucket: Number(row.day), count: Number(row.n) });
    return figures;
  }

  async rolledUpDays(from: number, to: number): Promise<number[]> {
    const rows = await this.#db.selectFrom("report_rollups").select("day").where("day", ">=", from).where("day", "<", to).execute();
    return rows.map((r) => Number(r.day));
  }

  async oldestRecord(): Promise<number | null> {
    const oldest = async (table: "otp_codes" | "otp_refusals") => {
      const row = await this.#db.selectFrom(table).select(sql<number | null>`min(created_at)`.as("t")).executeTakeFirst();
      return row?.t == null ? Number.POSITIVE_INFINITY : Number(row.t);
    };
    const first = Math.min(await oldest("otp_codes"), await oldest("otp_refusals"));
    return Number.isFinite(first) ? first : null;
  }

  async rollUpDay(day: number, now: number): Promise<boolean> {
    const rollup: DayRollup = { slices: new Map(), failures: new Map(), refusals: new Map() };
    await inWindows(day, day + DAY_MS, (from, to) => this.#addWindow(rollup, { from, to }, now));
    return this.#saveDay(day, rollup, now);
  }

  /** Adds one window of a day's codes and refusals to its roll-up, by plain reads (no write lock). */
  async #addWindow(rollup: DayRollup, window: ReportFilter, now: number): Promise<void> {
    const [groups, ttv, failures, refusals] = await Promise.all([
      this.#groupsQuery(window, DAY_MS, now).execute(),
      this.#codes(window)
        .where("verified_at", "is not", null)
        .select(["purpose", "channel", "country", seconds.as("s"), sql<number>`count(*)`.as("n")])
        .groupBy(["purpose", "channel", "country", seconds])
        .execute(),
      this.#failedCodes(window)
        .select(["purpose", "channel", "country", "provider_error_code as code", sql<number>`count(*)`.as("n")])
        .groupBy(["purpose", "channel", "country", "provider_error_code"])
        .execute(),
      this.#refusals(window)
        .select(["purpose", "country", "rule", sql<number>`count(*)`.as("n")])
        .groupBy(["purpose", "country", "rule"])
        .execute(),
    ]);
    for (const row of groups) {
      const slice = sliceOf(row);
      const key = JSON.stringify([slice.purpose, slice.channel, slice.country ?? ""]);
      const found = rollup.slices.get(key);
      if (found === undefined) rollup.slices.set(key, { ...slice, ttv: {} });
      else {
        for (const field of ["sent", "delivered", "failed", "verified", "expired", "locked", "spendMicros"] as const) {
          found[field] += slice[field];
        }
      }
    }
    for (const row of ttv) {
      const slice = rollup.slices.get(JSON.stringify([row.purpose, row.channel, row.country ?? ""]));
      if (slice !== undefined) slice.ttv[String(Number(row.s))] = (slice.ttv[String(Number(row.s))] ?? 0) + Number(row.n);
    }
    for (const row of failures) {
      const entry = {
        purpose: row.purpose,
        channel: row.channel,
        country: row.country ?? "",
        error_code: row.code ?? "",
        n: Number(row.n),
      };
      const key = JSON.stringify([entry.purpose, entry.channel, entry.country, entry.error_code]);
      const found = rollup.failures.get(key);
      if (found === undefined) rollup.failures.set(key, entry);
      else found.n += entry.n;
    }
    for (const row of refusals) {
      const entry = { purpose: row.purpose, country: row.country ?? "", rule: row.rule, n: Number(row.n) };
      const key = JSON.stringify([entry.purpose, entry.country, entry.rule]);
      const found = rollup.refusals.get(key);
      if (found === undefined) rollup.refusals.set(key, entry);
      else found.n += entry.n;
    }
  }

  /**
   * Claims the day and writes its rows, in one transaction of a few inserts. The claim comes first: when
   * another instance got there before, the transaction writes nothing and what was read is dropped.
   */
  #saveDay(day: number, rollup: DayRollup, now: number): Promise<boolean> {
    const db = this.#db;
    const days = [...rollup.slices.values()].map((s) => ({
      day,
      purpose: s.purpose,
      channel: s.channel,
      country: s.country ?? "",
      sent: s.sent,
      delivered: s.delivered,
      failed: s.failed,
      verified: s.verified,
      expired: s.expired,
      locked: s.locked,
      spend_micros: s.spendMicros,
      ttv: JSON.stringify(s.ttv),
    }));
    const failed = [...rollup.failures.values()].map((f) => ({ day, ...f }));
    const refused = [...rollup.refusals.values()].map((r) => ({ day, ...r }));
    return this.#runner.transaction(function* () {
      const claimed = yield once(
        db
          .insertInto("report_rollups")
          .values({ day, created_at: now })
          .onConflict((oc) => oc.column("day").doNothing())
          .returning("day"),
      );
      if (claimed.rows.length === 0) return false;
      // In chunks: SQLite takes at most 32,766 values per statement.
      for (let i = 0; i < days.length; i += 500) yield once(db.insertInto("report_days").values(days.slice(i, i + 500)));
      for (let i = 0; i < failed.length; i += 1000) yield once(db.insertInto("report_day_failures").values(failed.slice(i, i + 1000)));
      for (let i = 0; i < refused.length; i += 1000) yield once(db.insertInto("report_day_refusals").values(refused.slice(i, i + 1000)));
      return true;
    });
  }

  #codes(filter: ReportFilter) {
    let q = this.#db.selectFrom("otp_codes").where("created_at", ">=", filter.from).where("created_at", "<", filter.to);
    if (filter.purpose !== undefined) q = q.where("purpose", "=", filter.purpose);
    if (filter.channel !== undefined) q = q.where("channel", "=", filter.channel);
    if (filter.country !== undefined) q = q.where("country", "=", filter.country);
    return q;
  }

  #failedCodes(filter: ReportFilter) {
    return this.#codes(filter).where((eb) => eb.or([eb("status", "=", "failed"), eb("delivery_status", "in", ["undelivered", "failed"])]));
  }

  #refusals(filter: ReportFilter) {
    let q = this.#db.selectFrom("otp_refusals").where("created_at", ">=", filter.from).where("created_at", "<", filter.to);
    if (filter.purpose !== undefined) q = q.where("purpose", "=", filter.purpose);
    if (filter.country !== undefined) q = q.where("country", "=", filter.country);
    // A refusal has no channel: the channel filter leaves refusals as they are.
    return q;
  }

  /** Per bucket, purpose, channel and country: every count, in one range scan. */
  #groupsQuery(filter: ReportFilter, bucketMs: number, now: number) {
    const bucket = bucketOf(bucketMs);
    const count = (condition: ReturnType<typeof sql>) => sql<number>`sum(case when ${condition} then 1 else 0 end)`;
    return this.#codes(filter)
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
}

/** Whole seconds from send to verification. */
const seconds = sql<number>`(verified_at - created_at) / 1000`;

const bucketOf = (size: number) => sql<number>`(created_at / ${sql.lit(size)}) * ${sql.lit(size)}`;

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

function sliceOf(row: GroupRow): Slice {
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
    spendMicros: Number(row.spend),
  };
}

/**
 * Walks [from, to) in windows read one after the other, each sized from the last one's time so that it
 * takes about WINDOW_TARGET_MS, with a turn of the event loop between them.
 */
async function inWindows(from: number, to: number, read: (from: number, to: number) => Promise<void>): Promise<void> {
  let span = FIRST_WINDOW_MS;
  for (let start = from; start < to; ) {
    const end = Math.min(to, start + span);
    const began = performance.now();
    await read(start, end);
    const took = Math.max(performance.now() - began, 0.1);
    span = Math.max(MIN_WINDOW_MS, Math.min(span * 4, Math.floor((span * WINDOW_TARGET_MS) / took)));
    start = end;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
