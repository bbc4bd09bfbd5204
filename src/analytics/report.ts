import type { ChannelName } from "../channels/channel.js";
import type { Figures, ReportFilter, ReportStore, Slice } from "../store/report-store.js";
import type { Counts, Grouping, Summary, Timeseries } from "./schema.js";

export type { Counts, Summary, Timeseries } from "./schema.js";
export { GROUPINGS, type Grouping } from "./schema.js";

const BUCKET_MS: Record<Grouping, number> = { day: 86_400_000, hour: 3_600_000 };

/** A report's range and filters; times are epoch milliseconds, `to` exclusive; buckets are UTC. */
export interface ReportQuery extends ReportFilter {
  groupBy: Grouping;
  /** One of PURPOSES, or `verify:<service sid>` for a /v2 service's verifications. */
  purpose?: string | undefined;
  channel?: ChannelName | undefined;
}

type Tally = Omit<Counts, "conversion_rate" | "spend_usd"> & { spend_micros: number };

const emptyTally = (): Tally => ({ sent: 0, delivered: 0, failed: 0, verified: 0, expired: 0, locked: 0, spend_micros: 0 });

const DAY_MS = BUCKET_MS.day;

/**
 * A UTC day is rolled up once it ended this long ago: by then its codes have expired or been verified
 * and the providers' late delivery reports are in.
 */
export const ROLLUP_LAG_MS = 2 * DAY_MS;

/**
 * Reports over the codes and the refusals of a time range.
 *
 * Whole UTC days that ended more than ROLLUP_LAG_MS ago are read from daily roll-ups (a few rows per
 * day), written the first time a report or the retention job needs them; the rest of the range (today,
 * yesterday, partial days at its ends, hourly series) is read from the codes themselves. The roll-ups
 * hold no number, user or code, and outlive the codes retention deletes. The SQL is the store's
 * (store/report-store.ts); this class decides which source covers which part of the range, and sums.
 */
export class Analytics {
  readonly #store: ReportStore;

  constructor(store: ReportStore) {
    this.#store = store;
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
    const failures = new Map<string | null, number>();
    for (const f of parts.failures) failures.set(f.errorCode, (failures.get(f.errorCode) ?? 0) + f.count);
    return {
      ...range(query),
      totals: { ...counts(totals), refused: [...refusals.values()].reduce((a, b) => a + b, 0) },
      time_to_verify: percentiles(parts.timeToVerify),
      by_country: [...byCountry].map(([country, t]) => ({ country, ...counts(t) })).sort((a, b) => b.sent - a.sent),
      by_purpose: [...byPurpose].map(([purpose, t]) => ({ purpose, ...counts(t) })).sort((a, b) => b.sent - a.sent),
      by_channel: [...byChannel].map(([channel, t]) => ({ channel, ...counts(t) })).sort((a, b) => b.sent - a.sent),
      failures_by_error_code: [...failures]
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
    const first = await this.#store.oldestRecord();
    if (first === null) return 0;
    return this.#ensureRolledUp(Math.floor(first / DAY_MS) * DAY_MS, closed, now);
  }

  /** The report's figures: roll-ups for the closed whole days of the range, the codes for the rest. */
  async #parts(query: ReportQuery, now: number, series: boolean): Promise<Figures> {
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
    const parts: Figures = { slices: [], timeToVerify: [], failures: [], refusals: [] };
    if (rolled) {
      await this.#ensureRolledUp(firstDay, closedEnd, now);
      append(parts, await this.#store.readRollups({ ...query, from: firstDay, to: closedEnd }));
    }
    for (const [from, to] of segments) {
      append(parts, await this.#store.readCodes({ ...query, from: from as number, to: to as number }, BUCKET_MS[query.groupBy], now));
    }
    return parts;
  }

  /** Rolls up the days in [from, to) that have no roll-up yet; answers how many it wrote. */
  async #ensureRolledUp(from: number, to: number, now: number): Promise<number> {
    if (to <= from) return 0;
    const done = new Set(await this.#store.rolledUpDays(from, to));
    let written = 0;
    for (let day = from; day < to; day += DAY_MS) if (!done.has(day) && (await this.#store.rollUpDay(day, now))) written += 1;
    return written;
  }
}

// A loop, not push(...rows): an hourly series can hold more rows than a call takes arguments.
function append(parts: Figures, more: Figures): void {
  for (const row of more.slices) parts.slices.push(row);
  for (const row of more.timeToVerify) parts.timeToVerify.push(row);
  for (const row of more.failures) parts.failures.push(row);
  for (const row of more.refusals) parts.refusals.push(row);
}

/** Median and p95 from a histogram of whole seconds: exact to the second. */
function percentiles(rows: Figures["timeToVerify"]): Summary["time_to_verify"] {
  const histogram = new Map<number, number>();
  for (const { seconds, count } of rows) histogram.set(seconds, (histogram.get(seconds) ?? 0) + count);
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
  tally.spend_micros += row.spendMicros;
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
