// Where a PostgreSQL send and verify spend their time: statements per request (from the driver), commits
// and rows per request (pg_stat_database / pg_stat_user_tables deltas), what the service's connections
// wait on (pg_stat_activity every 50 ms), CPU per request of the service and of PostgreSQL.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { ACCOUNT_SID, AUTH_TOKEN, BASIC, codesFromLog, inRange, RANGES, verifyService } from "./harness.mjs";

const ROOT = join(import.meta.dirname, "..");
const URL0 = "postgres://postgres@127.0.0.1:5432/test";
const DURATION = Number(process.env.D ?? 8);
const DIST = process.env.DIST ?? join(ROOT, "dist");
const EXTRA = JSON.parse(process.env.EXTRA_ENV ?? "{}");
const schema = `prof_${randomBytes(4).toString("hex")}`;
const admin = new pg.Client({ connectionString: URL0 });
await admin.connect();
await admin.query(`create schema ${schema}`);
const RAISED = Object.fromEntries(
  ["CHALLENGE", "NUMBER", "USER", "IP", "PREFIX", "GLOBAL", "VERIFY"].map((n) => [`RATE_LIMIT_${n}`, "1000000000/1h"]),
);
RAISED.CONVERSION_BREAKER_MIN_SENDS = "1000000000";
const logDir = mkdtempSync(join(tmpdir(), "w15-prof-"));
const logFile = join(logDir, "log");
const out = (await import("node:fs")).openSync(logFile, "w");
const countOut = join(logDir, "count.json");
const server = spawn(
  process.execPath,
  [
    "--import",
    join(import.meta.dirname, "pg-count.mjs"),
    ...(process.env.NODE_FLAGS ? process.env.NODE_FLAGS.split(" ") : []),
    join(DIST, "cli", "main.js"),
    "serve",
    "--port",
    "0",
  ],
  {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      PG_COUNT_OUT: countOut,
      DATABASE_URL: `${URL0}?application_name=w15prof&options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      JWT_SECRET: randomBytes(32).toString("hex"),
      OTP_SECRET: randomBytes(32).toString("hex"),
      SMS_PROVIDER: "console",
      LOG_LEVEL: "info",
      VERIFY_ACCOUNT_SID: ACCOUNT_SID,
      VERIFY_AUTH_TOKEN: AUTH_TOKEN,
      ...RAISED,
      ...EXTRA,
    },
    stdio: ["ignore", out, "inherit"],
  },
);
let address;
// The process that serves, as its `listening` line names it: `serve` runs the service in a child process
// with its V8 flags (src/cli/v8-flags.ts), and that child is the one to measure and signal.
let servingPid;
for (let i = 0; i < 300 && address === undefined; i++) {
  await new Promise((r) => setTimeout(r, 100));
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    if (line.includes('"listening"')) ({ address, pid: servingPid } = JSON.parse(line));
  }
}
const token = (
  await fetch(`${address}/api/v1/auth/register/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "bench", password: "bench password 123" }),
  }).then((r) => r.json())
).access;
const load = (plan) =>
  new Promise((resolve) => {
    const c = spawn(process.execPath, [join(ROOT, "bench", "load.mjs"), JSON.stringify(plan)], { stdio: ["ignore", "pipe", "inherit"] });
    let o = "";
    c.stdout.on("data", (d) => (o += d));
    c.on("exit", () => resolve(JSON.parse(o.trim().split("\n").at(-1))));
  });
const cpu = (pid) => {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
};
const pgCpu = () => {
  const m = new Map();
  for (const n of readdirSync("/proc")) {
    if (!/^\d+$/.test(n)) continue;
    try {
      if (readFileSync(`/proc/${n}/comm`, "utf8").startsWith("postgres")) m.set(n, cpu(n));
    } catch {}
  }
  return m;
};
const dbStats = async () =>
  (
    await admin.query(
      "select xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, tup_fetched, blks_hit, blks_read from pg_stat_database where datname = 'test'",
    )
  ).rows[0];
const tableStats = async () =>
  Object.fromEntries(
    (
      await admin.query(
        `select relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, seq_scan, idx_scan from pg_stat_user_tables where schemaname = '${schema}'`,
      )
    ).rows.map((r) => [r.relname, r]),
  );
async function phase(name, plan) {
  process.kill(servingPid, "SIGUSR2");
  await new Promise((r) => setTimeout(r, 200));
  await admin.query("select pg_stat_clear_snapshot()");
  const [d0, t0, c0, p0] = [await dbStats(), await tableStats(), cpu(servingPid), pgCpu()];
  const waits = new Map();
  let samples = 0;
  let sampling = true;
  const sampler = (async () => {
    const s = new pg.Client({ connectionString: URL0 });
    await s.connect();
    while (sampling) {
      const { rows } = await s.query(
        "select state, coalesce(wait_event_type,'-') || ':' || coalesce(wait_event,'-') as w from pg_stat_activity where application_name = 'w15prof'",
      );
      samples++;
      for (const r of rows) {
        const k = `${r.state} ${r.w}`;
        waits.set(k, (waits.get(k) ?? 0) + 1);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await s.end();
  })();
  const result = await load(plan);
  sampling = false;
  await sampler;
  const c1 = cpu(servingPid);
  let pgms = 0;
  for (const [pid, ms] of pgCpu()) pgms += ms - (p0.get(pid) ?? 0);
  await new Promise((r) => setTimeout(r, 700));
  await admin.query("select pg_stat_clear_snapshot()");
  const [d1, t1] = [await dbStats(), await tableStats()];
  process.kill(servingPid, "SIGUSR2");
  await new Promise((r) => setTimeout(r, 300));
  const n = result.total;
  const per = (a, b) => ((Number(b) - Number(a)) / n).toFixed(2);
  console.log(
    `\n=== ${name}: ${result.requests.toFixed(0)} req/s, p50 ${result.p50} p99 ${result.p99}, n=${n}, non2xx ${result.non2xx}, load ${loadavg()[0].toFixed(2)}`,
  );
  console.log(
    `service peak RSS so far (VmHWM) ${(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${servingPid}/status`, "utf8"))[1]) / 1024).toFixed(0)} MiB`,
  );
  console.log(`service CPU ${(((c1 - c0) * 1000) / n).toFixed(0)} µs/req, PostgreSQL CPU ${((pgms * 1000) / n).toFixed(0)} µs/req`);
  console.log(
    `per request (db-wide, others' work included): commits ${per(d0.xact_commit, d1.xact_commit)} rollbacks ${per(d0.xact_rollback, d1.xact_rollback)} ins ${per(d0.tup_inserted, d1.tup_inserted)} upd ${per(d0.tup_updated, d1.tup_updated)} del ${per(d0.tup_deleted, d1.tup_deleted)} fetched ${per(d0.tup_fetched, d1.tup_fetched)} hit ${per(d0.blks_hit, d1.blks_hit)}`,
  );
  for (const [t, r] of Object.entries(t1)) {
    const a = t0[t] ?? {};
    const line = ["n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del", "seq_scan", "idx_scan"]
      .map((k) => `${k} ${per(a[k] ?? 0, r[k])}`)
      .join(" ");
    if (line.match(/[1-9]/)) console.log(`  ${t}: ${line}`);
  }
  console.log(`connections' state (mean over ${samples} samples):`);
  for (const [k, v] of [...waits.entries()].sort((a, b) => b[1] - a[1])) console.log(`  ${(v / samples).toFixed(2)}  ${k}`);
  const counts = JSON.parse(readFileSync(countOut, "utf8"));
  let total = 0;
  for (const c of counts) total += c.calls;
  console.log(`statements per request: ${(total / n).toFixed(2)}`);
  for (const c of counts.slice(0, 14)) console.log(`  ${(c.calls / n).toFixed(3)}/req  ${(c.ms / c.calls).toFixed(2)} ms  ${c.sql}`);
  return result;
}
await load({ url: `${address}/api/v1/messaging/send-otp/`, connections: 32, duration: 2, offset: 900000, kind: "send", token });
await phase("send", { url: `${address}/api/v1/messaging/send-otp/`, connections: 32, duration: DURATION, offset: 0, kind: "send", token });
const codes = new Map();
for (const line of readFileSync(logFile, "utf8").split("\n")) {
  if (!line.includes('"channel":"console"')) continue;
  const e = JSON.parse(line);
  const n = Number(e.to.slice(-6));
  if (n < 900000) codes.set(e.to, /^(\d+)/.exec(e.text)[1]);
}
const codesFile = join(logDir, "codes.json");
writeFileSync(codesFile, JSON.stringify([...codes.entries()]));
await phase("verify", {
  url: `${address}/api/v1/messaging/verify-otp/`,
  connections: 32,
  amount: codes.size,
  offset: 0,
  kind: "verify",
  token,
  codesFile,
});
// The same for Twilio Verify v2 (issue 13): a start and a check of each started verification.
const sid = await verifyService(address);
const v2 = { connections: 32, basic: BASIC };
await load({ ...v2, url: `${address}/v2/Services/${sid}/Verifications`, duration: 2, offset: RANGES.v2WarmUp, kind: "v2start" });
await phase("v2start", {
  ...v2,
  url: `${address}/v2/Services/${sid}/Verifications`,
  duration: DURATION,
  offset: RANGES.v2start,
  kind: "v2start",
});
await new Promise((r) => setTimeout(r, 500));
const started = codesFromLog(logFile, inRange(RANGES.v2start, RANGES.v2start + 100_000));
writeFileSync(codesFile, JSON.stringify(started));
await phase("v2check", {
  ...v2,
  url: `${address}/v2/Services/${sid}/VerificationCheck`,
  amount: started.length,
  offset: 0,
  kind: "v2check",
  codesFile,
});
server.kill("SIGTERM");
await new Promise((r) => server.once("exit", r));
await admin.query(`drop schema ${schema} cascade`);
await admin.end();
