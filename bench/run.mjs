// npm run bench: measures send-otp and verify-otp on SQLite and PostgreSQL, each against a ceiling measured
// in the same run (SQLite: a bare Fastify route; PostgreSQL: pgbench -N on the same server), on the same
// machine. See docs/benchmarks.md.

import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import {
  CONNECTIONS,
  ceiling,
  DURATION,
  fmt,
  mean,
  PGBENCH,
  PGBENCH_SCALE,
  POSTGRES_URL,
  pgbench,
  pgbenchTarget,
  progress,
  ROOT,
  run,
  service,
  sqlOn,
  TARGETS,
  VERIFY_WITHIN,
} from "./harness.mjs";

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
  for (const kind of ["send", "verify", "v2start", "v2check", "sendAfter", "verifyAfter"]) {
    const r = s[kind];
    if (!r) continue;
    const ratio = r.requests / s.ceiling;
    // Verify v2 against the mean of the native runs of its kind just before and just after it.
    const native =
      kind === "v2start"
        ? mean(s.send.requests, s.sendAfter.requests)
        : kind === "v2check"
          ? mean(s.verify.requests, s.verifyAfter.requests)
          : null;
    let verdict = "";
    if (kind.endsWith("After")) {
      verdict = "native again, after Verify v2: the other side of its comparison";
    } else if (native === null) {
      const checks = [ratio >= target[kind], r.p99 < TARGETS.p99, r.non2xx === 0];
      if (kind === "send") checks.push(r.memory <= TARGETS.rssMiB);
      const ok = checks.every(Boolean);
      verdict = `${ok ? "met" : "NOT MET"} (>=${target[kind] * 100}% of ${target.against}, p99<${TARGETS.p99}${kind === "send" ? `, RSS<=${TARGETS.rssMiB}` : ""})`;
      verdicts.push(ok);
    } else {
      const relative = r.requests / native;
      const ok = relative >= 1 - VERIFY_WITHIN && r.non2xx === 0 && (kind !== "v2check" || r.approved === r.total);
      verdict = `${fmt(relative * 100)}% of native: ${ok ? "met" : "NOT MET"} (within ${VERIFY_WITHIN * 100}%)`;
      if (kind === "v2check") verdict += `, ${r.approved}/${r.total} approved`;
    }
    rows.push([
      kind.startsWith("v2")
        ? `${kind} on ${s.name}`
        : `${kind.replace("After", "")}-otp on ${s.name}${kind.endsWith("After") ? " (again)" : ""}`,
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
  "Verify v2's start and check are compared with the mean of the native runs of their kind just before and just after them (sends, starts, sends again; verifies, checks, verifies again).",
);
console.log(
  `Ratios are to the mean of the ceilings just before and just after each database's runs (${results.services.map((s) => `${s.name}: ${TARGETS[s.name].against} ${fmt(s.ceiling)}`).join(", ")}).`,
);
console.log(
  `RSS: the service's peak during each send or start run (VmHWM, set back to the resident size when the run starts${results.services.every((x) => x.send.memoryPeakReset) ? "" : "; NOT set back here: start-up included"}), for a verify or check run the peak since the last of them; at start-up it peaked at ${results.services.map((x) => `${fmt(x.send.memoryStartUp)} MiB (${x.name})`).join(", ")}. CPU: the service's, and every PostgreSQL process's, per request. Load average ${results.loadAtStart.map((n) => n.toFixed(2)).join(" ")} at the start, ${results.loadAtEnd.map((n) => n.toFixed(2)).join(" ")} at the end.`,
);
mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
writeFileSync(join(ROOT, "bench", "results", "latest.json"), `${JSON.stringify(results, null, 2)}\n`);
if (process.env.BENCH_STRICT === "1" && verdicts.some((ok) => !ok)) process.exitCode = 1;
