// npm run bench:report: how long the reports take on a million codes (SQLite and PostgreSQL), through the
// same Analytics the API, the dashboard and `vericode report` use. See docs/benchmarks.md.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { Analytics } from "../dist/analytics/report.js";
import { SqlStore } from "../dist/store/sql-store.js";

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const DAYS = 30;
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const NOW = Date.UTC(2026, 10, 25, 12);
const START = NOW - DAYS * 86_400_000;
const COUNTRIES = ["CR", "US", "MX", "ES", "DE", "FR", "BR", "CA", "GB", "IT", "CO", "PA"];
const PURPOSES = ["registration", "login", "password_reset"];
const CHANNELS = ["sms", "sms", "sms", "whatsapp", "voice", "email"];

/** One code: deterministic from its index, spread evenly over the 30 days. */
function row(i) {
  const created = START + Math.floor((i / ROWS) * DAYS * 86_400_000);
  const roll = (i * 2654435761) % 100;
  const status = roll < 62 ? "verified" : roll < 67 ? "failed" : roll < 69 ? "locked" : roll < 80 ? "superseded" : "sent";
  return [
    `otp_${i.toString(16).padStart(32, "0")}`,
    `usr_${i % 50_000}`,
    `+5068${String(i % 10_000_000).padStart(7, "0")}`,
    PURPOSES[i % 3],
    "h".repeat(64),
    CHANNELS[i % 6],
    status,
    created,
    created + 600_000,
    status === "verified" ? created + 5000 + ((i * 7919) % 120_000) : null,
    status === "failed" ? null : `SM${i}`,
    status === "failed" ? ["21610", "21612", "21408", "30003"][i % 4] : null,
    status === "failed" ? null : roll < 90 ? "delivered" : "undelivered",
    created,
    COUNTRIES[i % COUNTRIES.length],
    status === "failed" ? null : 40_000 + (i % 30_000),
    1,
    null,
  ];
}

const COLUMNS =
  "id, user_id, phone_number, purpose, code_hash, channel, status, created_at, expires_at, verified_at, provider_message_id, provider_error_code, delivery_status, updated_at, country, price_micros, price_final, fallback_from";

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function time(label, fn, runs = 5) {
  await fn(); // warm the cache: the figure is the steady state an operator refreshing a dashboard sees
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  console.log(
    `  ${label.padEnd(44)} median ${median(ms).toFixed(0).padStart(5)} ms  (min ${Math.min(...ms).toFixed(0)}, max ${Math.max(...ms).toFixed(0)})`,
  );
}

async function measure(name, store) {
  const analytics = new Analytics(store.reports);
  const month = { from: START, to: NOW, groupBy: "day" };
  const week = { from: NOW - 7 * 86_400_000, to: NOW, groupBy: "day" };
  console.log(`${name}: ${ROWS.toLocaleString("en")} codes over ${DAYS} days`);
  // The first report of a range rolls up its closed days (once, ever); later ones read the roll-ups for
  // them and the codes only for the last two days.
  const t = performance.now();
  await analytics.summary(month, NOW);
  console.log(`  ${"first summary, 30 days (rolls up 28 days)".padEnd(44)} ${(performance.now() - t).toFixed(0).padStart(5)} ms  (once)`);
  await time("summary, 30 days (every code)", () => analytics.summary(month, NOW));
  await time("timeseries, 30 days by day", () => analytics.timeseries(month, NOW));
  await time("summary, 7 days", () => analytics.summary(week, NOW));
  await time("timeseries, 7 days by hour", () => analytics.timeseries({ ...week, groupBy: "hour" }, NOW));
  await time("summary, 30 days, country CR, purpose login", () => analytics.summary({ ...month, country: "CR", purpose: "login" }, NOW));
}

// SQLite: a file built with one prepared insert in one transaction.
const dir = mkdtempSync(join(tmpdir(), "vericode-report-"));
const path = join(dir, "report.db");
{
  const store = new SqlStore({ kind: "sqlite", path });
  await store.migrate();
  await store.close();
  const db = new Database(path);
  const insert = db.prepare(
    `insert into otp_codes (${COLUMNS}) values (${COLUMNS.split(",")
      .map(() => "?")
      .join(", ")})`,
  );
  const t = performance.now();
  db.transaction(() => {
    for (let i = 0; i < ROWS; i++) insert.run(row(i));
  })();
  db.exec("analyze");
  db.close();
  console.log(`(SQLite data set written in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
  const reopened = new SqlStore({ kind: "sqlite", path });
  await measure("SQLite", reopened);
  await reopened.close();
  // The CLI as an operator runs it: process start, configuration, migrations check, two reports, output.
  const t2 = performance.now();
  execFileSync(
    process.execPath,
    [join(import.meta.dirname, "..", "dist", "cli", "main.js"), "report", "--since", "30d", "--format", "json"],
    {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: `sqlite:${path}`,
        JWT_SECRET: "b".repeat(40),
        OTP_SECRET: "c".repeat(40),
        LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  console.log(
    `  ${"vericode report --since 30d --format json".padEnd(44)} ${(performance.now() - t2).toFixed(0).padStart(5)} ms  (whole command, once)`,
  );
}
if (process.env.BENCH_KEEP) console.log(`(kept ${path})`);
else rmSync(dir, { recursive: true, force: true });

// PostgreSQL: a schema of its own, filled by one INSERT … SELECT over generate_series.
const schema = `vc_bench_${randomBytes(4).toString("hex")}`;
const admin = new pg.Client({ connectionString: POSTGRES_URL });
try {
  await admin.connect();
} catch {
  console.log("PostgreSQL is not reachable: its part is skipped.");
  process.exit(0);
}
await admin.query(`create schema ${schema}`);
try {
  const store = new SqlStore({ kind: "postgres", url: POSTGRES_URL }, { schema });
  await store.migrate();
  const t = performance.now();
  await admin.query(
    `insert into ${schema}.otp_codes (${COLUMNS})
     select 'otp_' || lpad(to_hex(i), 32, '0'), 'usr_' || (i % 50000), '+5068' || lpad((i % 10000000)::text, 7, '0'),
       (array['registration','login','password_reset'])[i % 3 + 1], repeat('h', 64),
       (array['sms','sms','sms','whatsapp','voice','email'])[i % 6 + 1], s.status, c.created, c.created + 600000,
       case when s.status = 'verified' then c.created + 5000 + (i * 7919) % 120000 end,
       case when s.status <> 'failed' then 'SM' || i end,
       case when s.status = 'failed' then (array['21610','21612','21408','30003'])[i % 4 + 1] end,
       case when s.status = 'failed' then null when s.roll < 90 then 'delivered' else 'undelivered' end,
       c.created, (array['CR','US','MX','ES','DE','FR','BR','CA','GB','IT','CO','PA'])[i % 12 + 1],
       case when s.status <> 'failed' then 40000 + i % 30000 end, 1, null
     from generate_series(0::bigint, $1::bigint - 1) as i,
       lateral (select ${START}::bigint + floor(i::numeric / $1 * ${DAYS * 86_400_000})::bigint as created) c,
       lateral (select r as roll, case when r < 62 then 'verified' when r < 67 then 'failed' when r < 69 then 'locked'
                 when r < 80 then 'superseded' else 'sent' end as status
                from (select (i::bigint * 2654435761) % 100 as r) x) s`,
    [ROWS],
  );
  await admin.query(`analyze ${schema}.otp_codes`);
  console.log(`(PostgreSQL data set written in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
  await measure("PostgreSQL", store);
  await store.close();
} finally {
  await admin.query(`drop schema ${schema} cascade`);
  await admin.end();
}
