// npm run bench:maintenance: send-otp on SQLite while `vericode purge` and the roll-up of `vericode report`
// run beside it, on a database of a million codes; the sends' req/s, p50 and p99 without maintenance,
// then with it, and the longest /healthz answer of each. See docs/benchmarks.md ("Maintenance beside
// sends"); test/scale/maintenance.test.ts checks the same scenario for correctness, not speed.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { seedHistory } from "../test/support/seed-history.mjs";

const ROOT = join(import.meta.dirname, "..");
const CLI = join(ROOT, "dist", "cli", "main.js");
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CODES = Number(process.env.BENCH_ROWS ?? 1_000_000);
/** Two months of history; `vericode purge --days 7` deletes the 53 older days (some 88 % of it). */
const HISTORY = { codes: CODES, refusals: CODES / 10, challenges: (CODES * 3) / 10, days: 60 };
const KEEP_DAYS = 7;
const HEALTH_EVERY_MS = 50;
const RAISED_LIMITS = Object.fromEntries(
  ["CHALLENGE", "NUMBER", "USER", "IP", "PREFIX", "GLOBAL", "VERIFY"].map((name) => [`RATE_LIMIT_${name}`, "1000000000/1h"]),
);
RAISED_LIMITS.CONVERSION_BREAKER_MIN_SENDS = "1000000000";

const progress = (text) => process.stderr.write(`bench: ${text}\n`);
const children = new Set();

function spawnChild(args, env, stdout = "pipe") {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", stdout, "pipe"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Runs a child to its end: its exit code, stdout, stderr and how long it took. */
function finished(child) {
  const started = performance.now();
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr, ms: performance.now() - started })));
}

/** Starts the load; `stop()` ends it and resolves autocannon's figures. */
function startLoad(plan) {
  const child = spawnChild([join(ROOT, "bench", "maintenance.mjs"), "load", JSON.stringify(plan)], {});
  const result = finished(child);
  return {
    result: result.then(({ code, stdout, stderr }) => {
      if (code !== 0) throw new Error(`load exited ${code}: ${stderr}`);
      return JSON.parse(stdout.trim().split("\n").at(-1));
    }),
    stop: () => child.kill("SIGTERM"),
  };
}

/** GET /healthz every 50 ms until `stop()`; resolves every answer's time, and the failures. */
function probeHealth(address) {
  let stopped = false;
  const times = [];
  let failures = 0;
  const done = (async () => {
    while (!stopped) {
      const started = performance.now();
      try {
        const response = await fetch(`${address}/healthz`, { signal: AbortSignal.timeout(30_000) });
        await response.arrayBuffer();
        if (response.status !== 200) failures += 1;
      } catch {
        failures += 1;
      }
      times.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, HEALTH_EVERY_MS));
    }
    return { checks: times.length, longest: Math.max(...times), failures };
  })();
  return {
    stop: () => {
      stopped = true;
      return done;
    },
  };
}

/** Starts `vericode serve` on `databaseUrl`, its log in a file (read after, not followed: no CPU of the bench's own). */
async function serve(databaseUrl, logFile) {
  const out = openSync(logFile, "w");
  const child = spawnChild(
    [CLI, "serve", "--port", "0"],
    {
      DATABASE_URL: databaseUrl,
      JWT_SECRET: randomBytes(32).toString("hex"),
      OTP_SECRET: randomBytes(32).toString("hex"),
      SMS_PROVIDER: "console",
      LOG_LEVEL: "info",
      // The service's own hourly retention job (first run 1-2 min after start) has nothing to delete.
      RETENTION_DAYS: "3650",
      ...RAISED_LIMITS,
    },
    out,
  );
  closeSync(out);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const listening = readFileSync(logFile, "utf8")
      .split("\n")
      .map((line) => (line.startsWith("{") ? JSON.parse(line) : {}))
      .find((entry) => entry.event === "listening");
    if (listening !== undefined) return { child, address: listening.address };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the server did not start: ${readFileSync(logFile, "utf8")}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

async function main() {
  process.on("exit", () => {
    for (const child of children) child.kill("SIGKILL");
  });
  const dir = mkdtempSync(join(tmpdir(), "vericode-maintenance-"));
  const path = join(dir, "vericode.db");
  const databaseUrl = `sqlite:${path}`;
  const cliEnv = { DATABASE_URL: databaseUrl, JWT_SECRET: "b".repeat(40), OTP_SECRET: "c".repeat(40), LOG_LEVEL: "warn" };
  try {
    const migrated = await finished(spawnChild([CLI, "migrate"], cliEnv));
    if (migrated.code !== 0) throw new Error(`vericode migrate failed: ${migrated.stderr}`);
    const now = Date.now();
    const seeded = seedHistory(path, { ...HISTORY, now });
    progress(`${CODES.toLocaleString("en")} codes seeded in ${fmt(seeded.ms / 1000, 1)} s`);

    const logFile = join(dir, "server.ndjson");
    const server = await serve(databaseUrl, logFile);
    const registered = await fetch(`${server.address}/api/v1/auth/register/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "bench", password: "bench password 123" }),
    }).then((r) => r.json());
    const plan = { url: `${server.address}/api/v1/messaging/send-otp/`, connections: CONNECTIONS, token: registered.access };

    progress("warm-up");
    const warm = startLoad({ ...plan, offset: 900_000, duration: 2 });
    await warm.result;

    progress(`sends alone, ${DURATION} s`);
    let health = probeHealth(server.address);
    const alone = await startLoad({ ...plan, offset: 0, duration: DURATION }).result;
    const aloneHealth = await health.stop();

    progress("sends beside `vericode purge` and `vericode report` (its roll-up), until both end");
    health = probeHealth(server.address);
    const load = startLoad({ ...plan, offset: 100_000 });
    const [purge, report] = await Promise.all([
      finished(spawnChild([CLI, "purge", "--days", String(KEEP_DAYS), "--json"], cliEnv)),
      finished(spawnChild([CLI, "report", "--since", `${HISTORY.days + 1}d`, "--format", "json"], cliEnv)),
    ]);
    load.stop();
    const beside = await load.result;
    const besideHealth = await health.stop();
    for (const [name, run] of [
      ["purge", purge],
      ["report", report],
    ]) {
      if (run.code !== 0) throw new Error(`vericode ${name} exited ${run.code}: ${run.stderr}`);
    }
    const purged = JSON.parse(purge.stdout);

    const serverErrors = readFileSync(logFile, "utf8")
      .split("\n")
      .filter((line) => line.startsWith("{") && JSON.parse(line).level >= 50).length;
    server.child.kill("SIGTERM");
    await new Promise((resolve) => server.child.once("exit", resolve));

    const results = {
      date: new Date().toISOString(),
      node: process.version,
      connections: CONNECTIONS,
      history: HISTORY,
      seedMs: seeded.ms,
      alone: { ...alone, health: aloneHealth },
      beside: { ...beside, health: besideHealth },
      purge: { ms: purge.ms, ...purged },
      report: { ms: report.ms },
      serverErrors,
    };
    const rows = [["scenario", "req/s", "p50 ms", "p99 ms", "max ms", "non-2xx", "longest /healthz ms", "/healthz checks"]];
    for (const [name, r] of [
      ["send-otp alone", results.alone],
      ["send-otp beside purge + roll-up", results.beside],
    ]) {
      rows.push([
        name,
        fmt(r.requests),
        fmt(r.p50, 1),
        fmt(r.p99, 1),
        fmt(r.max),
        String(r.non2xx + r.errors + r.timeouts),
        fmt(r.health.longest, 1),
        `${r.health.checks}${r.health.failures > 0 ? ` (${r.health.failures} failed)` : ""}`,
      ]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
    for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  "));
    console.log(
      `\n${CODES.toLocaleString("en")} codes, ${HISTORY.refusals.toLocaleString("en")} refusals and ${HISTORY.challenges.toLocaleString("en")} challenges over ${HISTORY.days} days (SQLite, seeded in ${fmt(seeded.ms / 1000, 1)} s); ${CONNECTIONS} connections.`,
    );
    console.log(
      `vericode purge --days ${KEEP_DAYS}: ${fmt(purge.ms / 1000, 1)} s (${purged.codes} codes, ${purged.refusals} refusals, ${purged.challenges} challenges deleted; ${purged.rolledUp} days rolled up first). ` +
        `vericode report --since ${HISTORY.days + 1}d, at the same time: ${fmt(report.ms / 1000, 1)} s. Server error lines: ${serverErrors}.`,
    );
    mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
    writeFileSync(join(ROOT, "bench", "results", "maintenance.json"), `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// `node bench/maintenance.mjs load <plan>`: the load generator, in a process of its own (as bench/load.mjs)
// so that it does not share an event loop with the bench's /healthz probe; it runs until SIGTERM, then
// prints autocannon's result as one JSON line.
function runLoad() {
  const plan = JSON.parse(process.argv[3]);
  let i = 0;
  const instance = autocannon(
    {
      url: plan.url,
      connections: plan.connections,
      duration: plan.duration ?? 3600,
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${plan.token}` },
      requests: [
        {
          setupRequest: (request) => ({
            ...request,
            body: JSON.stringify({ phone_number: `+50688${String(plan.offset + i++).padStart(6, "0")}`, purpose: "login" }),
          }),
        },
      ],
    },
    (error, result) => {
      if (error) throw error;
      const { average: requests, total } = result.requests;
      const { p50, p99, max } = result.latency;
      process.stdout.write(
        `${JSON.stringify({ requests, total, p50, p99, max, non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts })}\n`,
      );
    },
  );
  process.once("SIGTERM", () => instance.stop());
}

if (process.argv[2] === "load") runLoad();
else await main();
