import { reportQuery } from "../analytics/range.js";
import type { Counts, Summary, Timeseries } from "../analytics/report.js";
import { applyRetention } from "../analytics/retention.js";
import { systemClock } from "../clock.js";
import { VericodeError } from "../errors.js";
import { commandService } from "./otp.js";

export interface ReportOptions {
  since?: string;
  from?: string;
  to?: string;
  groupBy?: string;
  purpose?: string;
  service?: string;
  channel?: string;
  country?: string;
  format: string;
}

/** `vericode report`: the summary and the time series of a range, as a table, JSON or CSV. */
export async function runReport(options: ReportOptions): Promise<void> {
  if (!["table", "json", "csv"].includes(options.format)) {
    throw new VericodeError("validation_error", "--format is table, json or csv.");
  }
  // The API's own checks of a report's range and filters (analytics/range.ts), before the database opens.
  const now = systemClock.now().getTime();
  const query = reportQuery(
    {
      since: options.since ?? (options.from === undefined ? "7d" : undefined),
      from: options.from,
      to: options.to,
      group_by: options.groupBy,
      purpose: options.purpose,
      service: options.service,
      channel: options.channel,
      country: options.country,
    },
    now,
  );
  const vericode = await commandService();
  try {
    const [summary, series] = await Promise.all([vericode.analytics.summary(query, now), vericode.analytics.timeseries(query, now)]);
    if (options.format === "json") process.stdout.write(`${JSON.stringify({ summary, timeseries: series }, null, 2)}\n`);
    else if (options.format === "csv") process.stdout.write(csv(series));
    else process.stdout.write(table(summary, series));
  } finally {
    await vericode.close();
  }
}

const COLUMNS = ["sent", "delivered", "failed", "verified", "expired", "locked", "conversion_rate", "spend_usd"] as const;

function csv(series: Timeseries): string {
  const lines = [["t", ...COLUMNS, "refused"].join(",")];
  for (const point of series.points) lines.push([point.t, ...COLUMNS.map((c) => point[c]), point.refused].join(","));
  return `${lines.join("\n")}\n`;
}

const percent = (rate: number) => `${(rate * 100).toFixed(1)}%`;
const money = (usd: number) => `$${usd.toFixed(4)}`;

function table(summary: Summary, series: Timeseries): string {
  const t = summary.totals;
  const ttv = summary.time_to_verify;
  const filters = Object.entries(summary.filters)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  const out: string[] = [
    `vericode report ${summary.from} → ${summary.to}${filters === "" ? "" : ` (${filters})`}`,
    "",
    `sent ${t.sent}  delivered ${t.delivered}  failed ${t.failed}  verified ${t.verified}  expired ${t.expired}  locked ${t.locked}  refused ${t.refused}`,
    `conversion ${percent(t.conversion_rate)}  time to verify: median ${seconds(ttv.median_seconds)}, p95 ${seconds(ttv.p95_seconds)}  spend ${money(t.spend_usd)}`,
    "",
    grid(
      [series.group_by, ...POINT_COLUMNS.map(([head]) => head)],
      series.points.map((p) => [
        p.t.slice(0, series.group_by === "day" ? 10 : 13).replace("T", " "),
        ...POINT_COLUMNS.map(([, cell]) => cell(p)),
      ]),
    ),
  ];
  const section = (title: string, head: string[], rows: string[][]) => {
    if (rows.length > 0) out.push("", title, grid(head, rows));
  };
  const counted = (label: string, c: Counts) => [label, ...row(c)];
  section(
    "by country",
    ["country", ...COUNT_HEAD],
    summary.by_country.map((c) => counted(c.country ?? "-", c)),
  );
  section(
    "by purpose",
    ["purpose", ...COUNT_HEAD],
    summary.by_purpose.map((c) => counted(c.purpose, c)),
  );
  section(
    "by channel",
    ["channel", ...COUNT_HEAD],
    summary.by_channel.map((c) => counted(c.channel, c)),
  );
  section(
    "failures by provider error code",
    ["error code", "count"],
    summary.failures_by_error_code.map((f) => [f.error_code ?? "-", String(f.count)]),
  );
  section(
    "refusals by rule",
    ["rule", "count"],
    summary.refusals_by_rule.map((r) => [r.rule, String(r.count)]),
  );
  return `${out.join("\n")}\n`;
}

type Column<T> = readonly [head: string, cell: (figures: T) => string];
type Point = Timeseries["points"][number];

// Each heading sits beside the figure it heads, so the two cannot drift apart.
const COUNTS: Column<Counts>[] = [
  ["sent", (c) => String(c.sent)],
  ["delivered", (c) => String(c.delivered)],
  ["failed", (c) => String(c.failed)],
  ["verified", (c) => String(c.verified)],
  ["expired", (c) => String(c.expired)],
  ["locked", (c) => String(c.locked)],
];
const RATES: Column<Counts>[] = [
  ["conversion", (c) => percent(c.conversion_rate)],
  ["spend", (c) => money(c.spend_usd)],
];
/** The breakdowns' columns (by country, purpose, channel). */
const COUNT_COLUMNS = [...COUNTS, ...RATES];
/** The time series' columns: the counts, the refusals (as in the totals line), then the rates. */
const POINT_COLUMNS: Column<Point>[] = [...COUNTS, ["refused", (p) => String(p.refused)], ...RATES];

const COUNT_HEAD = COUNT_COLUMNS.map(([head]) => head);

function row(c: Counts): string[] {
  return COUNT_COLUMNS.map(([, cell]) => cell(c));
}

function seconds(value: number | null): string {
  return value === null ? "-" : `${value} s`;
}

/** Left-aligned first column, right-aligned numbers. */
function grid(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}

/** `vericode purge`: rolls up, then deletes, the whole days older than RETENTION_DAYS (or --days). */
export async function runPurge(options: { days?: number; json?: boolean }): Promise<void> {
  const vericode = await commandService();
  try {
    const days = options.days ?? vericode.config.retentionDays;
    const result = await applyRetention(vericode, days, vericode.clock.now().getTime());
    if (options.json) process.stdout.write(`${JSON.stringify({ ...result, before: result.before.toISOString() })}\n`);
    else {
      process.stdout.write(
        `Deleted what was older than ${days} days (before ${result.before.toISOString()}): ${result.codes} codes, ${result.refusals} refusals, ${result.challenges} challenges; ${result.rolledUp} days rolled up for the reports first.\n`,
      );
    }
  } finally {
    await vericode.close();
  }
}
