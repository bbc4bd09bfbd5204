// npm run bench: measures send-otp and verify-otp on SQLite and PostgreSQL against the ceiling of a bare
// Fastify route, all in the same run, on the same machine. See docs/benchmarks.md.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";

const ROOT = join(import.meta.dirname, "..");
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const TARGETS = { verify: 0.15, send: 0.1, p99: 20 };
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

/** The codes the console provider printed, by number (its message starts with the code). */
function codesFromLog(logFile) {
  const codes = new Map();
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    if (!line.includes('"channel":"console"')) continue;
    const entry = JSON.parse(line);
    if (typeof entry.text === "string") codes.set(entry.to, entry.text.slice(0, 6));
  }
  return codes;
}

/** Peak resident memory of a process, from the kernel (VmHWM), in MiB. */
function peakRss(pid) {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : Number.NaN;
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

const progress = (text) => process.stderr.write(`bench: ${text}\n`);
const mean = (a, b) => (a + b) / 2;

async function ceiling() {
  progress("ceiling");
  const proc = start(join(ROOT, "bench", "ceiling.mjs"), [], {});
  const address = await waitFor(proc, (line) => JSON.parse(line).listening);
  await load({ url: `${address}/ceiling`, connections: CONNECTIONS, duration: 2, offset: 0, kind: "ceiling" });
  const result = await load({ url: `${address}/ceiling`, connections: CONNECTIONS, duration: DURATION, offset: 0, kind: "ceiling" });
  const memory = peakRss(proc.child.pid);
  await stop(proc.child);
  return { ...result, memory };
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
  const registered = await fetch(`${address}/api/v1/auth/register/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "bench", password: "bench password 123" }),
  }).then((r) => r.json());
  const token = registered.access;
  progress(`${name}: send-otp`);
  // Warm-up on numbers the measured run does not use.
  await load({ url: `${address}/api/v1/messaging/send-otp/`, connections: CONNECTIONS, duration: 2, offset: 900_000, kind: "send", token });
  const send = await load({
    url: `${address}/api/v1/messaging/send-otp/`,
    connections: CONNECTIONS,
    duration: DURATION,
    offset: 0,
    kind: "send",
    token,
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  // The console provider prints each SMS to the log: that is where the bench reads the codes from.
  const codes = codesFromLog(logFile);
  progress(`${name}: verify-otp (${codes.size} codes)`);
  const list = [...codes.entries()].filter(([phone]) => Number(phone.slice(-6)) < 900_000);
  const verify = await load({
    url: `${address}/api/v1/messaging/verify-otp/`,
    connections: CONNECTIONS,
    amount: list.length,
    offset: 0,
    kind: "verify",
    codesFile: writeCodes(list),
    token,
  });
  const memory = peakRss(proc.child.pid);
  await stop(proc.child);
  rmSync(dirname(logFile), { recursive: true, force: true });
  return { name, send: { ...send, memory }, verify: { ...verify, memory }, codes: list.length };
}

/** The codes travel to the load process in a file: too many for a command line. */
function writeCodes(list) {
  const file = join(mkdtempSync(join(tmpdir(), "vericode-codes-")), "codes.json");
  writeFileSync(file, JSON.stringify(list));
  return file;
}

const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

// The ceiling is measured before and after each database's runs, and each ratio is taken to the mean of
// the two that bracket it: the machine's speed drifts within a run (the ceiling alone moved between
// 29,000 and 43,000 req/s from one run to the next on the 2-core machine of docs/benchmarks.md).
const results = { date: new Date().toISOString(), connections: CONNECTIONS, duration: DURATION, node: process.version };
results.ceilings = [await ceiling()];
const dir = mkdtempSync(join(tmpdir(), "vericode-bench-"));
results.services = [await service("sqlite", `sqlite:${join(dir, "bench.db")}`)];
rmSync(dir, { recursive: true, force: true });
results.ceilings.push(await ceiling());
results.services[0].ceiling = mean(results.ceilings[0].requests, results.ceilings[1].requests);

const schema = `bench_${randomBytes(4).toString("hex")}`;
try {
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const postgres = await service("postgres", `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`);
  results.ceilings.push(await ceiling());
  postgres.ceiling = mean(results.ceilings[1].requests, results.ceilings[2].requests);
  results.services.push(postgres);
} catch (error) {
  console.error(`PostgreSQL run skipped: ${error.message}`);
} finally {
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin
    .connect()
    .then(() => admin.query(`drop schema if exists ${schema} cascade`))
    .catch(() => {});
  await admin.end().catch(() => {});
}

const rows = [["scenario", "req/s", "p50 ms", "p99 ms", "peak RSS MiB", "of ceiling", "non-2xx", "target"]];
for (const [i, c] of results.ceilings.entries()) {
  rows.push([
    `ceiling ${i + 1} (bare Fastify, same JSON)`,
    fmt(c.requests),
    fmt(c.p50, 1),
    fmt(c.p99, 1),
    fmt(c.memory),
    "",
    String(c.non2xx),
    "",
  ]);
}
for (const s of results.services) {
  for (const kind of ["send", "verify"]) {
    const r = s[kind];
    const ratio = r.requests / s.ceiling;
    const ok = ratio >= TARGETS[kind] && r.p99 < TARGETS.p99 && r.non2xx === 0;
    rows.push([
      `${kind}-otp on ${s.name}`,
      fmt(r.requests),
      fmt(r.p50, 1),
      fmt(r.p99, 1),
      fmt(r.memory),
      `${fmt(ratio * 100, 1)}%`,
      String(r.non2xx),
      `${ok ? "met" : "MISSED"} (>=${TARGETS[kind] * 100}%, p99<${TARGETS.p99})`,
    ]);
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  "));
console.log(
  `\n${CONNECTIONS} connections, ${DURATION} s per send run; verify runs verify every code the send run produced, each once, with the right code.`,
);
console.log(
  `Ratios are to the mean of the ceilings measured just before and just after each database's runs (${results.services.map((s) => `${s.name}: ${fmt(s.ceiling)}`).join(", ")}).`,
);
mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
writeFileSync(join(ROOT, "bench", "results", "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
