// npm run bench: measures send-otp and verify-otp on SQLite and PostgreSQL against the ceiling of a bare
// Fastify route, all in the same run, on the same machine. See docs/benchmarks.md.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";

const ROOT = join(import.meta.dirname, "..");
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const PGBENCH = process.env.PGBENCH ?? "pgbench";
/** Scale of pgbench's scratch database (10: a million accounts, 160 MB). */
const PGBENCH_SCALE = Number(process.env.BENCH_PGBENCH_SCALE ?? 10);
const CLOCK_TICKS = 100;
/**
 * Issue 15's targets: each database's ratio to its own ceiling, measured in the same run (SQLite: the bare
 * Fastify route; PostgreSQL: `pgbench -N` at the same client count against the same server), p99 at the
 * bench's connections, and the service's peak RSS during the send run.
 */
const TARGETS = {
  sqlite: { against: "ceiling", send: 0.15, verify: 0.25 },
  postgres: { against: "pgbench", send: 0.4, verify: 0.6 },
  p99: 30,
  rssMiB: 150,
};
/** Twilio Verify v2 (issue 13): within this much of the native send and verify. */
const VERIFY_WITHIN = 0.2;
const ACCOUNT_SID = `AC${randomBytes(16).toString("hex")}`;
const AUTH_TOKEN = randomBytes(24).toString("hex");
const BASIC = Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString("base64");
const RAISED_LIMITS = Object.fromEntries(
  ["CHALLENGE", "NUMBER", "USER", "IP", "PREFIX", "GLOBAL", "VERIFY"].map((name) => [`RATE_LIMIT_${name}`, "1000000000/1h"]),
);
RAISED_LIMITS.CONVERSION_BREAKER_MIN_SENDS = "1000000000";

const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/**
 * Starts a server process. Its stdout goes to `logFile` when given: the bench then reads the log after a
 * run instead of following it, so that no process of the bench's own competes with the server for the
 * CPU while it is measured (the log of a send run is some 12,000 lines a second).
 */
function start(script, args, env, logFile) {
  const out = logFile === undefined ? "pipe" : openSync(logFile, "w");
  const child = spawn(process.execPath, [script, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", out, "inherit"],
  });
  if (typeof out === "number") closeSync(out);
  children.add(child);
  child.once("exit", () => children.delete(child));
  const listeners = new Set();
  if (logFile === undefined) {
    createInterface({ input: child.stdout }).on("line", (line) => {
      for (const listener of listeners) listener(line);
    });
  } else {
    // Until the server listens, its few lines are read as they come.
    let seen = 0;
    const poll = setInterval(() => {
      const lines = readFileSync(logFile, "utf8").split("\n");
      for (const line of lines.slice(seen, -1)) for (const listener of listeners) listener(line);
      seen = Math.max(seen, lines.length - 1);
    }, 50);
    child.once("exit", () => clearInterval(poll));
    return { child, onLine: (f) => listeners.add(f), stopFollowing: () => clearInterval(poll) };
  }
  return { child, onLine: (f) => listeners.add(f), stopFollowing: () => {} };
}

function waitFor(proc, predicate) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("server did not start in 30 s")), 30_000);
    proc.onLine((line) => {
      const value = predicate(line);
      if (value !== undefined) {
        clearTimeout(timer);
        resolve(value);
      }
    });
    proc.child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
}

/**
 * The codes the console provider printed, by number: a native message starts with its code ("123456 is
 * your sign-in code…"), a Verify one ends with it ("Your Bench verification code is: 123456.", "Tu código
 * de Bench es: 123456." for the bench's Costa Rican numbers). `keep` picks the numbers of one run.
 */
function codesFromLog(logFile, keep) {
  const codes = new Map();
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    if (!line.includes('"channel":"console"')) continue;
    const entry = JSON.parse(line);
    if (typeof entry.text !== "string" || !keep(entry.to)) continue;
    // A native message starts with its code; a Verify one ends with it, in the number's language.
    const code = /^(\d+)/.exec(entry.text)?.[1] ?? /(\d+)\D*$/.exec(entry.text)?.[1];
    if (code !== undefined) codes.set(entry.to, code);
  }
  return [...codes.entries()];
}

/** Peak resident memory of a process so far, from the kernel (VmHWM), in MiB. */
function peakRss(pid) {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** CPU time (user + system) of a process so far, in ms; 0 once it is gone. */
function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** CPU time of every PostgreSQL process of this machine (server, backends, WAL writer…), by pid. */
function postgresCpu() {
  const byPid = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/comm`, "utf8").startsWith("postgres")) byPid.set(name, cpuMs(name));
    } catch {}
  }
  return byPid;
}

/** PostgreSQL's CPU between two readings: backends that lived through both (vericode's pool does). */
function postgresCpuSince(before) {
  let total = 0;
  for (const [pid, ms] of postgresCpu()) total += ms - (before.get(pid) ?? 0);
  return total;
}

/** Runs a load and measures the server's CPU and PostgreSQL's around it. */
async function measured(pid, plan) {
  const cpu = cpuMs(pid);
  const pgCpu = postgresCpu();
  const result = await load(plan);
  const done = Math.max(1, result.total);
  result.cpuUsPerRequest = ((cpuMs(pid) - cpu) * 1000) / done;
  result.postgresCpuUsPerRequest = (postgresCpuSince(pgCpu) * 1000) / done;
  return result;
}

function load(plan) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "bench", "load.mjs"), JSON.stringify(plan)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.on("exit", (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split("\n").at(-1))) : reject(new Error(`load exited ${code}`)),
    );
  });
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

const progress = (text) => process.stderr.write(`bench: ${text} (load ${loadavg()[0].toFixed(2)})\n`);
const mean = (a, b) => (a + b) / 2;

async function ceiling() {
  progress("ceiling");
  const proc = start(join(ROOT, "bench", "ceiling.mjs"), [], {});
  const address = await waitFor(proc, (line) => JSON.parse(line).listening);
  await load({ url: `${address}/ceiling`, connections: CONNECTIONS, duration: 2, offset: 0, kind: "ceiling" });
  const result = await load({ url: `${address}/ceiling`, connections: CONNECTIONS, duration: DURATION, offset: 0, kind: "ceiling" });
  const memory = peakRss(proc.child.pid);
  await stop(proc.child);
  return { ...result, memory, load: loadavg()[0] };
}

/** Runs a command to its end; rejects with its stderr when it fails. */
function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (err += chunk));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} exited ${code}: ${err.trim().slice(-500)}`))));
  });
}

/** `pgbench` options that reach the database of `url` (host, port, user; the password from PGPASSWORD). */
function pgbenchTarget(url, database) {
  const u = new URL(url);
  return ["-h", u.hostname, "-p", u.port || "5432", "-U", decodeURIComponent(u.username || "postgres"), database];
}

/**
 * PostgreSQL's own commit limit on this server: `pgbench -N` (the simple-update transaction: three
 * updates-or-inserts and a commit, no hot rows) at the bench's client count, in a scratch database made
 * for it, after a CHECKPOINT so that no checkpoint of the set-up lands inside the measured seconds.
 */
async function pgbench(database) {
  progress("pgbench -N");
  await sqlOn(database, "checkpoint");
  const out = await run(PGBENCH, [
    "-N",
    "-c",
    String(CONNECTIONS),
    "-j",
    "2",
    "-T",
    String(DURATION),
    ...pgbenchTarget(POSTGRES_URL, database),
  ]);
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1] ?? Number.NaN);
  const latency = Number(/latency average = ([\d.]+) ms/.exec(out)?.[1] ?? Number.NaN);
  return { requests: tps, latencyMs: latency, load: loadavg()[0] };
}

/** One statement on a database of the bench's server (its name replaces the URL's). */
async function sqlOn(database, text) {
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

/** The bench's user: registered once, its token for every native request. */
async function register(address) {
  const registered = await fetch(`${address}/api/v1/auth/register/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "bench", password: "bench password 123" }),
  }).then((r) => r.json());
  return registered.access;
}

/** A Verify service (POST /v2/Services FriendlyName=Bench): its SMS reads "Your Bench verification code is: …". */
async function verifyService(address) {
  const answer = await fetch(`${address}/v2/Services`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${BASIC}` },
    body: "FriendlyName=Bench",
  });
  if (answer.status !== 201) throw new Error(`POST /v2/Services answered ${answer.status}: ${await answer.text()}`);
  return (await answer.json()).sid;
}

// Numbers of each run (+50688 and six digits): measured runs and their warm-ups never share one.
const RANGES = { send: 0, sendWarmUp: 900_000, v2start: 300_000, v2WarmUp: 800_000 };
const inRange = (from, to) => (phone) => {
  const n = Number(phone.slice(-6));
  return n >= from && n < to;
};

/** A send run (warm-up, then measured, with the server's RSS right after it), then a verify run of its codes. */
async function sendAndVerify(server, logFile, kinds) {
  const { pid } = server;
  const base = { connections: CONNECTIONS, ...kinds.auth };
  progress(`${server.name}: ${kinds.send}`);
  await load({ ...base, url: kinds.sendUrl, duration: 2, offset: kinds.warmUp, kind: kinds.send });
  const send = await measured(pid, { ...base, url: kinds.sendUrl, duration: DURATION, offset: kinds.offset, kind: kinds.send });
  send.memory = peakRss(pid);
  send.load = loadavg()[0];
  await new Promise((resolve) => setTimeout(resolve, 500));
  // The console provider prints each SMS to the log: that is where the bench reads the codes from.
  const list = codesFromLog(logFile, inRange(kinds.offset, kinds.offset + 100_000));
  progress(`${server.name}: ${kinds.verify} (${list.length} codes)`);
  const verify = await measured(pid, {
    ...base,
    url: kinds.verifyUrl,
    amount: list.length,
    offset: 0,
    kind: kinds.verify,
    codesFile: writeCodes(list),
  });
  verify.memory = peakRss(pid);
  verify.load = loadavg()[0];
  return { send, verify, codes: list.length };
}

async function service(name, databaseUrl) {
  const logFile = join(mkdtempSync(join(tmpdir(), "vericode-bench-log-")), "server.ndjson");
  const proc = start(
    join(ROOT, "dist", "cli", "main.js"),
    ["serve", "--port", "0"],
    {
      DATABASE_URL: databaseUrl,
      JWT_SECRET: randomBytes(32).toString("hex"),
      OTP_SECRET: randomBytes(32).toString("hex"),
      SMS_PROVIDER: "console",
      LOG_LEVEL: "info",
      VERIFY_ACCOUNT_SID: ACCOUNT_SID,
      VERIFY_AUTH_TOKEN: AUTH_TOKEN,
      // Every protection rule runs and counts (docs/protection.md), with limits raised so that the bench's
      // one user, one address and few number ranges are never refused.
      ...RAISED_LIMITS,
    },
    logFile,
  );
  const address = await waitFor(proc, (line) => {
    const entry = JSON.parse(line);
    return entry.event === "listening" ? entry.address : undefined;
  });
  proc.stopFollowing();
  const server = { name, address, pid: proc.child.pid };
  const native = await sendAndVerify(server, logFile, {
    send: "send",
    verify: "verify",
    sendUrl: `${address}/api/v1/messaging/send-otp/`,
    verifyUrl: `${address}/api/v1/messaging/verify-otp/`,
    auth: { token: await register(address) },
    offset: RANGES.send,
    warmUp: RANGES.sendWarmUp,
  });
  const sid = await verifyService(address);
  const v2 = await sendAndVerify(server, logFile, {
    send: "v2start",
    verify: "v2check",
    sendUrl: `${address}/v2/Services/${sid}/Verifications`,
    verifyUrl: `${address}/v2/Services/${sid}/VerificationCheck`,
    auth: { basic: BASIC },
    offset: RANGES.v2start,
    warmUp: RANGES.v2WarmUp,
  });
  await stop(proc.child);
  rmSync(dirname(logFile), { recursive: true, force: true });
  return { name, send: native.send, verify: native.verify, v2start: v2.send, v2check: v2.verify, codes: native.codes };
}

/** The codes travel to the load process in a file: too many for a command line. */
function writeCodes(list) {
  const file = join(mkdtempSync(join(tmpdir(), "vericode-codes-")), "codes.json");
  writeFileSync(file, JSON.stringify(list));
  return file;
}

const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

// Each ratio is to the mean of two ceilings measured just before and just after the database's runs: the
// machine's speed drifts within a run (the bare-Fastify ceiling moved between 11,000 and 43,000 req/s from
// one run to the next on the shared 2-core machine of docs/benchmarks.md). SQLite's ceiling is the bare
// Fastify route; PostgreSQL's is pgbench -N on the same server, bracketing the PostgreSQL runs the same way.
const results = {
  date: new Date().toISOString(),
  connections: CONNECTIONS,
  duration: DURATION,
  node: process.version,
  loadAtStart: loadavg(),
  targets: TARGETS,
};
results.ceilings = [await ceiling()];
const dir = mkdtempSync(join(tmpdir(), "vericode-bench-"));
results.services = [await service("sqlite", `sqlite:${join(dir, "bench.db")}`)];
rmSync(dir, { recursive: true, force: true });
results.ceilings.push(await ceiling());
results.services[0].ceiling = mean(results.ceilings[0].requests, results.ceilings[1].requests);

const suffix = randomBytes(4).toString("hex");
const schema = `bench_${suffix}`;
const scratch = `vericode_pgbench_${suffix}`;
try {
  await sqlOn(new URL(POSTGRES_URL).pathname.slice(1), `create schema ${schema}`);
  await sqlOn("postgres", `create database ${scratch}`);
  progress(`pgbench -i -s ${PGBENCH_SCALE}`);
  await run(PGBENCH, ["-i", "-q", "-s", String(PGBENCH_SCALE), ...pgbenchTarget(POSTGRES_URL, scratch)]);
  results.pgbench = [await pgbench(scratch)];
  const postgres = await service("postgres", `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`);
  results.pgbench.push(await pgbench(scratch));
  postgres.ceiling = mean(results.pgbench[0].requests, results.pgbench[1].requests);
  results.services.push(postgres);
} catch (error) {
  console.error(`PostgreSQL run skipped: ${error.message}`);
} finally {
  await sqlOn(new URL(POSTGRES_URL).pathname.slice(1), `drop schema if exists ${schema} cascade`).catch(() => {});
  await sqlOn("postgres", `drop database if exists ${scratch}`).catch(() => {});
}
results.loadAtEnd = loadavg();

const rows = [["scenario", "req/s", "p50 ms", "p99 ms", "RSS MiB", "of ceiling", "CPU µs/req", "PG CPU µs/req", "non-2xx", "target"]];
const ceilingRow = (label, c) => [
  label,
  fmt(c.requests),
  fmt(c.p50, 1),
  fmt(c.p99, 1),
  fmt(c.memory),
  "",
  "",
  "",
  String(c.non2xx ?? ""),
  "",
];
for (const [i, c] of results.ceilings.entries()) rows.push(ceilingRow(`ceiling ${i + 1} (bare Fastify, same JSON)`, c));
for (const [i, p] of (results.pgbench ?? []).entries()) {
  rows.push([`pgbench -N ${i + 1} (${CONNECTIONS} clients, scale ${PGBENCH_SCALE})`, fmt(p.requests), "", "", "", "", "", "", "", ""]);
}
const verdicts = [];
for (const s of results.services) {
  const target = TARGETS[s.name];
  for (const kind of ["send", "verify", "v2start", "v2check"]) {
    const r = s[kind];
    const ratio = r.requests / s.ceiling;
    const native = kind === "v2start" ? s.send : kind === "v2check" ? s.verify : null;
    let verdict = "";
    if (native === null) {
      const checks = [ratio >= target[kind], r.p99 < TARGETS.p99, r.non2xx === 0];
      if (kind === "send") checks.push(r.memory <= TARGETS.rssMiB);
      const ok = checks.every(Boolean);
      verdict = `${ok ? "met" : "NOT MET"} (>=${target[kind] * 100}% of ${target.against}, p99<${TARGETS.p99}${kind === "send" ? `, RSS<=${TARGETS.rssMiB}` : ""})`;
      verdicts.push(ok);
    } else {
      const relative = r.requests / native.requests;
      const ok = relative >= 1 - VERIFY_WITHIN && r.non2xx === 0 && (kind !== "v2check" || r.approved === r.total);
      verdict = `${fmt(relative * 100)}% of native: ${ok ? "met" : "NOT MET"} (within ${VERIFY_WITHIN * 100}%)`;
      if (kind === "v2check") verdict += `, ${r.approved}/${r.total} approved`;
    }
    rows.push([
      `${kind}${kind.startsWith("v2") ? "" : "-otp"} on ${s.name}`,
      fmt(r.requests),
      fmt(r.p50, 1),
      fmt(r.p99, 1),
      fmt(r.memory),
      `${fmt(ratio * 100, 1)}% ${target.against}`,
      fmt(r.cpuUsPerRequest),
      s.name === "postgres" ? fmt(r.postgresCpuUsPerRequest) : "",
      String(r.non2xx),
      verdict,
    ]);
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  "));
console.log(
  `\n${CONNECTIONS} connections, ${DURATION} s per send run; verify runs verify every code the send run produced, each once, with the right code.`,
);
console.log(
  `Ratios are to the mean of the ceilings just before and just after each database's runs (${results.services.map((s) => `${s.name}: ${TARGETS[s.name].against} ${fmt(s.ceiling)}`).join(", ")}).`,
);
console.log(
  `RSS: the service's peak (VmHWM) right after the run. CPU: the service's, and every PostgreSQL process's, per request. Load average ${results.loadAtStart.map((n) => n.toFixed(2)).join(" ")} at the start, ${results.loadAtEnd.map((n) => n.toFixed(2)).join(" ")} at the end.`,
);
mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
writeFileSync(join(ROOT, "bench", "results", "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
if (process.env.BENCH_STRICT === "1" && verdicts.some((ok) => !ok)) process.exitCode = 1;
