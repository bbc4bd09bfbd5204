// npm run bench:workers: `vericode serve` on PostgreSQL with Redis (REDIS_URL: the limiter's buckets leave
// the database), one process, then `--workers 2`, then one process again; send and verify as in npm run
// bench, with the CPU of the service's processes (primary and workers) and of PostgreSQL, in cores busy
// and per request. See docs/deployment.md (sizing) and docs/benchmarks.md.
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { CONNECTIONS, DURATION, fmt, POSTGRES_URL, progress, ROOT, service, sqlOn } from "./harness.mjs";

const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const db = new URL(POSTGRES_URL).pathname.slice(1);
const results = { date: new Date().toISOString(), connections: CONNECTIONS, duration: DURATION, loadAtStart: loadavg(), runs: [] };

for (const workers of [1, 2, 1]) {
  const suffix = randomBytes(4).toString("hex");
  const schema = `workers_${suffix}`;
  await sqlOn(db, `create schema ${schema}`);
  try {
    progress(`postgres + redis, ${workers === 1 ? "one process" : `--workers ${workers}`}`);
    const run = await service("postgres", `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`, {
      v2: false,
      args: workers === 1 ? [] : ["--workers", String(workers)],
      env: { REDIS_URL, REDIS_KEY_PREFIX: `bench-${suffix}:` },
    });
    results.runs.push({ workers, ...run });
  } finally {
    await sqlOn(db, `drop schema if exists ${schema} cascade`).catch(() => {});
  }
}
results.loadAtEnd = loadavg();

const rows = [
  [
    "processes",
    "kind",
    "req/s",
    "p50 ms",
    "p99 ms",
    "vericode cores",
    "PostgreSQL cores",
    "vericode µs/req",
    "PostgreSQL µs/req",
    "peak RSS MiB (largest process)",
  ],
];
for (const r of results.runs) {
  for (const kind of ["send", "verify"]) {
    const x = r[kind];
    rows.push([
      r.workers === 1 ? "1" : `--workers ${r.workers}`,
      kind,
      fmt(x.requests),
      fmt(x.p50, 1),
      fmt(x.p99, 1),
      fmt(x.serviceCores, 2),
      fmt(x.postgresCores, 2),
      fmt(x.cpuUsPerRequest),
      fmt(x.postgresCpuUsPerRequest),
      fmt(x.memory),
    ]);
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  "));
console.log(
  `\nPostgreSQL ${POSTGRES_URL}, Redis ${REDIS_URL}; load average ${results.loadAtStart.map((n) => n.toFixed(2)).join(" ")} at the start, ${results.loadAtEnd.map((n) => n.toFixed(2)).join(" ")} at the end.`,
);
mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
writeFileSync(join(ROOT, "bench", "results", "workers.json"), `${JSON.stringify(results, null, 2)}\n`);
