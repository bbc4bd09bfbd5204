// What npm run bench (run.mjs) and npm run bench:scale (scale.mjs) share: the servers, the load, the
// readings of memory and CPU. See docs/benchmarks.md.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";

export const ROOT = join(import.meta.dirname, "..");
export const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
export const DURATION = Number(process.env.BENCH_DURATION ?? 10);
export const POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const PGBENCH = process.env.PGBENCH ?? "pgbench";
/** Scale of pgbench's scratch database (10: a million accounts, 160 MB). */
export const PGBENCH_SCALE = Number(process.env.BENCH_PGBENCH_SCALE ?? 10);
export const CLOCK_TICKS = 100;
/**
 * Issue 15's targets: each database's ratio to its own ceiling, measured in the same run (SQLite: the bare
 * Fastify route; PostgreSQL: `pgbench -N` at the same client count against the same server), p99 at the
 * bench's connections, and the service's peak RSS during the send run.
 */
export const TARGETS = {
  sqlite: { against: "ceiling", send: 0.15, verify: 0.25 },
  postgres: { against: "pgbench", send: 0.4, verify: 0.6 },
  p99: 30,
  rssMiB: 150,
};
/** Twilio Verify v2 (issue 13): within this much of the native send and verify. */
export const VERIFY_WITHIN = 0.2;
export const ACCOUNT_SID = `AC${randomBytes(16).toString("hex")}`;
export const AUTH_TOKEN = randomBytes(24).toString("hex");
export const BASIC = Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString("base64");
export const RAISED_LIMITS = Object.fromEntries(
  ["CHALLENGE", "NUMBER", "USER", "IP", "PREFIX", "GLOBAL", "VERIFY"].map((name) => [`RATE_LIMIT_${name}`, "1000000000/1h"]),
);
RAISED_LIMITS.CONVERSION_BREAKER_MIN_SENDS = "1000000000";

export const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

/**
 * Starts a server process. Its stdout goes to `logFile` when given: the bench then reads the log after a
 * run instead of following it, so that no process of the bench's own competes with the server for the
 * CPU while it is measured (the log of a send run is some 12,000 lines a second).
 */
export function start(script, args, env, logFile) {
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

export function waitFor(proc, predicate) {
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
export function codesFromLog(logFile, keep) {
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
export function peakRss(pid) {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** CPU time (user + system) of a process so far, in ms; 0 once it is gone. */
export function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** The process and its children (the workers of `serve --workers N`). */
export function processTree(pid) {
  const pids = [String(pid)];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] === String(pid)) pids.push(name);
    } catch {}
  }
  return pids;
}

/**
 * Starts a new peak: the kernel's high-water mark (VmHWM) of the process and its children is set back to
 * their resident memory now (`echo 5 > /proc/<pid>/clear_refs`, Linux 4.0+, the process's owner), so that
 * the next reading is the peak of what ran in between, not of the service's start-up (migrations, loading
 * and compiling its modules, which peak some 15 MiB above where the service then stays). Returns false
 * where the kernel does not allow it: the reading then includes the start-up.
 */
export function resetPeakRss(pid) {
  let reset = true;
  for (const p of processTree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, "5");
    } catch {
      reset = false;
    }
  }
  return reset;
}

/** The largest peak RSS (MiB) among a process and its children: one process's, or the busiest worker's. */
export function treePeakRss(pid) {
  return Math.max(
    ...processTree(pid).map((p) => {
      try {
        return peakRss(p);
      } catch {
        return 0;
      }
    }),
  );
}

/** CPU time of a process and of its children so far, in ms. */
export function treeCpuMs(pid) {
  return processTree(pid).reduce((total, p) => total + cpuMs(p), 0);
}

/** CPU time of every PostgreSQL process of this machine (server, backends, WAL writer…), by pid. */
export function postgresCpu() {
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
export function postgresCpuSince(before) {
  let total = 0;
  for (const [pid, ms] of postgresCpu()) total += ms - (before.get(pid) ?? 0);
  return total;
}

/** Runs a load and measures the server's CPU and PostgreSQL's around it. */
export async function measured(pid, plan) {
  const cpu = treeCpuMs(pid);
  const pgCpu = postgresCpu();
  const started = performance.now();
  const result = await load(plan);
  const seconds = (performance.now() - started) / 1000;
  const done = Math.max(1, result.total);
  const serviceMs = treeCpuMs(pid) - cpu;
  const postgresMs = postgresCpuSince(pgCpu);
  result.cpuUsPerRequest = (serviceMs * 1000) / done;
  // Cores busy on average while the run lasted (its 2 s of process start-up included).
  result.serviceCores = serviceMs / 1000 / seconds;
  result.postgresCores = postgresMs / 1000 / seconds;
  result.postgresCpuUsPerRequest = (postgresMs * 1000) / done;
  return result;
}

export function load(plan) {
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

export async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

export const progress = (text) => process.stderr.write(`bench: ${text} (load ${loadavg()[0].toFixed(2)})\n`);
export const mean = (a, b) => (a + b) / 2;

export async function ceiling() {
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
export function run(command, args) {
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
export function pgbenchTarget(url, database) {
  const u = new URL(url);
  return ["-h", u.hostname, "-p", u.port || "5432", "-U", decodeURIComponent(u.username || "postgres"), database];
}

/**
 * PostgreSQL's own commit limit on this server: `pgbench -N` (the simple-update transaction: three
 * updates-or-inserts and a commit, no hot rows) at the bench's client count, in a scratch database made
 * for it, after a CHECKPOINT so that no checkpoint of the set-up lands inside the measured seconds.
 */
export async function pgbench(database) {
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
export async function sqlOn(database, text) {
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
export async function register(address) {
  const registered = await fetch(`${address}/api/v1/auth/register/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "bench", password: "bench password 123" }),
  }).then((r) => r.json());
  return registered.access;
}

/** A Verify service (POST /v2/Services FriendlyName=Bench): its SMS reads "Your Bench verification code is: …". */
export async function verifyService(address) {
  const answer = await fetch(`${address}/v2/Services`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${BASIC}` },
    body: "FriendlyName=Bench",
  });
  if (answer.status !== 201) throw new Error(`POST /v2/Services answered ${answer.status}: ${await answer.text()}`);
  return (await answer.json()).sid;
}

// Numbers of each run (+50688 and six digits): measured runs and their warm-ups never share one.
export const RANGES = { send: 0, sendWarmUp: 900_000, v2start: 300_000, v2WarmUp: 800_000, sendAfter: 500_000 };
export const inRange = (from, to) => (phone) => {
  const n = Number(phone.slice(-6));
  return n >= from && n < to;
};

/** A send run (after a warm-up unless `warmUp` is null), with the server's peak RSS during it. */
async function sendRun(server, kinds) {
  const { pid } = server;
  const base = { connections: CONNECTIONS, ...kinds.auth };
  progress(`${server.name}: ${kinds.send}`);
  if (kinds.warmUp !== null) await load({ ...base, url: kinds.sendUrl, duration: 2, offset: kinds.warmUp, kind: kinds.send });
  const startUp = treePeakRss(pid);
  await server.settle?.();
  const peakReset = resetPeakRss(pid);
  const send = await measured(pid, { ...base, url: kinds.sendUrl, duration: DURATION, offset: kinds.offset, kind: kinds.send });
  send.memory = treePeakRss(pid);
  send.memoryStartUp = startUp;
  send.memoryPeakReset = peakReset;
  send.load = loadavg()[0];
  return send;
}

/** A verify run of every code the send run of `kinds` produced, each once, with the right code. */
async function verifyRun(server, logFile, kinds) {
  // The console provider prints each SMS to the log: that is where the bench reads the codes from.
  const list = codesFromLog(logFile, inRange(kinds.offset, kinds.offset + 100_000));
  progress(`${server.name}: ${kinds.verify} (${list.length} codes)`);
  await server.settle?.();
  const verify = await measured(server.pid, {
    connections: CONNECTIONS,
    ...kinds.auth,
    url: kinds.verifyUrl,
    amount: list.length,
    offset: 0,
    kind: kinds.verify,
    codesFile: writeCodes(list),
  });
  verify.memory = treePeakRss(server.pid);
  verify.load = loadavg()[0];
  return { verify, codes: list.length };
}

/** A send run, then a verify run of its codes. */
export async function sendAndVerify(server, logFile, kinds) {
  const send = await sendRun(server, kinds);
  await new Promise((resolve) => setTimeout(resolve, 500));
  return { send, ...(await verifyRun(server, logFile, kinds)) };
}

/**
 * The service on `databaseUrl`: native send and verify, then (unless `v2: false`) Verify v2 start and check.
 *
 * Verify v2 is compared with the native API run just before and just after it, kind by kind: native sends,
 * `/v2` starts, native sends again (other numbers), then native verifies, `/v2` checks, native verifies of
 * the second run's codes. The machine's speed drifts by up to a third within a minute (docs/benchmarks.md,
 * "Third session"), so a `/v2` run is held against the mean of the two native runs around it
 * (`sendAfter`, `verifyAfter`), not against one run made a minute earlier.
 */
export async function service(name, databaseUrl, options = {}) {
  const logFile = join(mkdtempSync(join(tmpdir(), "vericode-bench-log-")), "server.ndjson");
  const proc = start(
    join(ROOT, "dist", "cli", "main.js"),
    ["serve", "--port", "0", ...(options.args ?? [])],
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
      // BENCH_NODE_OPTIONS: V8's flags for the service, e.g. docs/deployment.md's --max-semi-space-size.
      ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
      ...options.env,
    },
    logFile,
  );
  const address = await waitFor(proc, (line) => {
    const entry = JSON.parse(line);
    return entry.event === "listening" ? entry.address : undefined;
  });
  proc.stopFollowing();
  // On PostgreSQL each measured run starts after an ANALYZE and a CHECKPOINT. ANALYZE: this machine's
  // PostgreSQL runs with autovacuum off, so the fresh schema's tables never had statistics, and a named
  // statement's cached generic plan, made when they were empty, could scan otp_codes in every batch (a
  // /v2 start then cost PostgreSQL 500-900 µs of CPU instead of 100-160); a deployment's autovacuum
  // analyzes them as they grow (docs/deployment.md). CHECKPOINT, as before pgbench's runs: the server's
  // shared buffers (128 MB) are smaller than pgbench's scratch database, and without it the service's
  // backends wrote out the pages pgbench or the run before had left dirty, on the service's account.
  const settle =
    name === "postgres"
      ? async () => {
          await sqlOn(new URL(POSTGRES_URL).pathname.slice(1), "analyze");
          await sqlOn(new URL(POSTGRES_URL).pathname.slice(1), "checkpoint");
        }
      : undefined;
  const server = { name, address, pid: proc.child.pid, settle };
  const native = {
    send: "send",
    verify: "verify",
    sendUrl: `${address}/api/v1/messaging/send-otp/`,
    verifyUrl: `${address}/api/v1/messaging/verify-otp/`,
    auth: { token: await register(address) },
    offset: RANGES.send,
    warmUp: RANGES.sendWarmUp,
  };
  const finish = async () => {
    await stop(proc.child);
    rmSync(dirname(logFile), { recursive: true, force: true });
  };
  if (options.v2 === false) {
    const { send, verify, codes } = await sendAndVerify(server, logFile, native);
    await finish();
    return { name, send, verify, codes };
  }
  const sid = await verifyService(address);
  const v2 = {
    send: "v2start",
    verify: "v2check",
    sendUrl: `${address}/v2/Services/${sid}/Verifications`,
    verifyUrl: `${address}/v2/Services/${sid}/VerificationCheck`,
    auth: { basic: BASIC },
    offset: RANGES.v2start,
    warmUp: RANGES.v2WarmUp,
  };
  const nativeAfter = { ...native, offset: RANGES.sendAfter, warmUp: null };
  const send = await sendRun(server, native);
  const v2start = await sendRun(server, v2);
  const sendAfter = await sendRun(server, nativeAfter);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const { verify, codes } = await verifyRun(server, logFile, native);
  const { verify: v2check } = await verifyRun(server, logFile, v2);
  const { verify: verifyAfter } = await verifyRun(server, logFile, nativeAfter);
  await finish();
  return { name, send, verify, v2start, v2check, sendAfter, verifyAfter, codes };
}

/** The codes travel to the load process in a file: too many for a command line. */
export function writeCodes(list) {
  const file = join(mkdtempSync(join(tmpdir(), "vericode-codes-")), "codes.json");
  writeFileSync(file, JSON.stringify(list));
  return file;
}

export const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "-");
