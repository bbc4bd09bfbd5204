// npm run bench:scale: the bench's send and verify on an empty database, then on one that already holds
// BENCH_SCALE_CODES codes (default 10,000,000), a tenth as many users and a tenth as many refusals, then on
// an empty one again, on SQLite and on PostgreSQL. Seeded fast: one big transaction on SQLite
// (test/support/seed-history.mjs), COPY on PostgreSQL. Each seeded figure is compared with the mean of the
// two empty runs that bracket it (issue 15: within 20 %). See docs/benchmarks.md.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { seedHistory } from "../test/support/seed-history.mjs";
import { CONNECTIONS, DURATION, fmt, mean, POSTGRES_URL, progress, ROOT, run, service, sqlOn } from "./harness.mjs";

const CODES = Number(process.env.BENCH_SCALE_CODES ?? 10_000_000);
const USERS = Math.round(CODES / 10);
const REFUSALS = Math.round(CODES / 10);
/** Challenges the codes belong to (each code one of its challenge's sends). */
const CHALLENGES = Math.round(CODES / 3);
const DAYS = 30;
const WITHIN = 0.2;
const DAY_MS = 86_400_000;
const PURPOSES = ["registration", "login", "password_reset"];
const CHANNELS = ["sms", "sms", "sms", "whatsapp", "voice", "email"];
const COUNTRIES = ["CR", "US", "MX", "ES", "DE", "FR", "BR", "CA", "GB", "IT", "CO", "PA"];
const RULES = ["number", "user", "ip", "prefix", "global", "country"];
const ERRORS = ["21610", "21612", "21408", "30003"];
const database = process.env.BENCH_SCALE_DATABASES?.split(",") ?? ["sqlite", "postgres"];

const env = (url) => ({ PATH: process.env.PATH, DATABASE_URL: url, JWT_SECRET: "x".repeat(64), OTP_SECRET: "y".repeat(64) });
const migrate = (url) =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "dist", "cli", "main.js"), "migrate"], { env: env(url), stdio: "ignore" });
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`migrate exited ${code}`))));
  });

/** Users `usr_<i in hex>`, one in three with a verified number, as tab-separated COPY rows or SQL values. */
function userRow(i, now) {
  const phone = i % 3 === 0 ? `+5067${String(i).padStart(7, "0")}` : null;
  return [`usr_${i.toString(16).padStart(32, "0")}`, `user${i}`, null, "scrypt$seeded", phone, phone === null ? 0 : 1, "user", 0, now, now];
}

function seedSqlite(path, now) {
  const started = performance.now();
  seedHistory(path, { codes: CODES, refusals: REFUSALS, challenges: CHALLENGES, days: DAYS, now });
  const db = new Database(path);
  db.pragma("synchronous = OFF");
  const insert = db.prepare(
    "insert into users (id, username, email, password_hash, phone_number, phone_verified, role, token_version, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  db.transaction(() => {
    for (let i = 0; i < USERS; i++) insert.run(...userRow(i, now));
  })();
  db.exec("analyze");
  db.close();
  return performance.now() - started;
}

/** Streams `rows` rows made by `row(i)` into `COPY table (columns) FROM STDIN` through psql. */
function copy(schema, table, columns, rows, row) {
  return new Promise((resolve, reject) => {
    const url = new URL(POSTGRES_URL);
    const psql = spawn(
      "psql",
      [
        "-h",
        url.hostname,
        "-p",
        url.port || "5432",
        "-U",
        decodeURIComponent(url.username || "postgres"),
        "-v",
        "ON_ERROR_STOP=1",
        "-q",
        url.pathname.slice(1),
      ],
      { stdio: ["pipe", "ignore", "pipe"], env: { ...process.env, PGOPTIONS: `-c search_path=${schema}` } },
    );
    let err = "";
    psql.stderr.on("data", (chunk) => (err += chunk));
    psql.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`COPY ${table}: ${err.trim()}`))));
    psql.stdin.write(`copy ${table} (${columns}) from stdin;\n`);
    let i = 0;
    const pump = () => {
      while (i < rows) {
        let chunk = "";
        for (const end = Math.min(rows, i + 5000); i < end; i++)
          chunk += `${row(i)
            .map((v) => (v === null ? "\\N" : String(v)))
            .join("\t")}\n`;
        if (!psql.stdin.write(chunk)) return psql.stdin.once("drain", pump);
      }
      psql.stdin.end("\\.\n");
    };
    pump();
  });
}

/** The same history as seed-history.mjs makes on SQLite (numbers, proportions, challenges), by COPY. */
async function seedPostgres(schema, now) {
  const started = performance.now();
  const from = now - DAYS * DAY_MS;
  const span = DAYS * DAY_MS;
  const key = (c) => ({
    phone: `+5068${String((c * 7919113) % 10_000_000).padStart(7, "0")}`,
    purpose: PURPOSES[c % 3],
    user: `usr_${(c % 50_000).toString(16).padStart(32, "0")}`,
  });
  const hex = (n, width) => n.toString(16).padStart(width, "0");
  const codeRow = (i) => {
    const created = from + Math.floor((i * span) / CODES);
    const roll = (i * 2654435761) % 100;
    const status = roll < 62 ? "verified" : roll < 67 ? "failed" : roll < 69 ? "locked" : roll < 80 ? "superseded" : "sent";
    const k = key(i % CHALLENGES);
    return [
      `otp_${hex(created, 12)}${randomBytes(10).toString("hex")}`,
      k.user,
      k.phone,
      k.purpose,
      "h".repeat(64),
      CHANNELS[i % CHANNELS.length],
      status,
      created,
      created + 600_000,
      status === "verified" ? created + 5000 + ((i * 7919) % 120_000) : null,
      status === "failed" ? null : `SM${hex(i, 32)}`,
      status === "failed" ? ERRORS[i % ERRORS.length] : null,
      status === "failed" ? null : roll < 90 ? "delivered" : "undelivered",
      created,
      COUNTRIES[i % COUNTRIES.length],
      status === "failed" ? null : 40_000 + (i % 30_000),
      1,
    ];
  };
  await copy(
    schema,
    "otp_codes",
    "id, user_id, phone_number, purpose, code_hash, channel, status, created_at, expires_at, verified_at, provider_message_id, provider_error_code, delivery_status, updated_at, country, price_micros, price_final",
    CODES,
    codeRow,
  );
  await copy(
    schema,
    "otp_challenges",
    "phone_number, purpose, user_id, attempts, send_count, last_sent_at, expires_at, locked_until, verified_at, created_at",
    CHALLENGES,
    (j) => {
      const i = CODES - CHALLENGES + j;
      const created = from + Math.floor((i * span) / CODES);
      const verified = (i * 2654435761) % 100 < 62 ? 1 : 0;
      const k = key(i % CHALLENGES);
      return [
        k.phone,
        k.purpose,
        k.user,
        verified,
        Math.floor(i / CHALLENGES) + 1,
        created,
        created + 600_000,
        null,
        verified ? created + 5000 : null,
        created,
      ];
    },
  );
  await copy(schema, "otp_refusals", "id, created_at, rule, code, purpose, user_id, country, phone_prefix, ip", REFUSALS, (i) => {
    const created = from + Math.floor((i * span) / REFUSALS);
    const k = key(i % CHALLENGES);
    return [
      `ref_${hex(created, 12)}${randomBytes(10).toString("hex")}`,
      created,
      RULES[i % RULES.length],
      "rate_limited",
      k.purpose,
      k.user,
      "CR",
      k.phone.slice(0, 8),
      `203.0.113.${i % 250}`,
    ];
  });
  await copy(
    schema,
    "users",
    "id, username, email, password_hash, phone_number, phone_verified, role, token_version, created_at, updated_at",
    USERS,
    (i) => userRow(i, now),
  );
  await run("psql", [
    "-h",
    new URL(POSTGRES_URL).hostname,
    "-U",
    "postgres",
    "-q",
    "-c",
    `set search_path = ${schema}; analyze; checkpoint`,
    new URL(POSTGRES_URL).pathname.slice(1),
  ]);
  return performance.now() - started;
}

const pgUrl = (schema) => `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
const results = {
  date: new Date().toISOString(),
  codes: CODES,
  users: USERS,
  refusals: REFUSALS,
  challenges: CHALLENGES,
  connections: CONNECTIONS,
  duration: DURATION,
  loadAtStart: loadavg(),
  runs: [],
};

async function sqlite() {
  const dir = mkdtempSync(join(tmpdir(), "vericode-scale-"));
  try {
    const empty1 = await service("sqlite", `sqlite:${join(dir, "empty1.db")}`, { v2: false });
    const seeded = join(dir, "seeded.db");
    await migrate(`sqlite:${seeded}`);
    progress(`sqlite: seeding ${CODES} codes, ${USERS} users, ${REFUSALS} refusals, ${CHALLENGES} challenges`);
    const seedMs = seedSqlite(seeded, Date.now());
    const full = await service("sqlite", `sqlite:${seeded}`, { v2: false });
    const empty2 = await service("sqlite", `sqlite:${join(dir, "empty2.db")}`, { v2: false });
    return { name: "sqlite", seedMs, empty: [empty1, empty2], full };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function postgres() {
  const suffix = randomBytes(4).toString("hex");
  const schemas = ["e1", "full", "e2"].map((name) => `scale_${name}_${suffix}`);
  const db = new URL(POSTGRES_URL).pathname.slice(1);
  try {
    for (const schema of schemas) await sqlOn(db, `create schema ${schema}`);
    const empty1 = await service("postgres", pgUrl(schemas[0]), { v2: false });
    await migrate(pgUrl(schemas[1]));
    progress(`postgres: seeding ${CODES} codes, ${USERS} users, ${REFUSALS} refusals, ${CHALLENGES} challenges (COPY)`);
    const seedMs = await seedPostgres(schemas[1], Date.now());
    const full = await service("postgres", pgUrl(schemas[1]), { v2: false });
    const empty2 = await service("postgres", pgUrl(schemas[2]), { v2: false });
    return { name: "postgres", seedMs, empty: [empty1, empty2], full };
  } finally {
    for (const schema of schemas) await sqlOn(db, `drop schema if exists ${schema} cascade`).catch(() => {});
  }
}

if (database.includes("sqlite")) results.runs.push(await sqlite());
if (database.includes("postgres")) results.runs.push(await postgres());
results.loadAtEnd = loadavg();

const rows = [["database", "kind", "empty req/s (two runs)", "seeded req/s", "seeded / empty", "p99 empty / seeded ms", "verdict"]];
for (const r of results.runs) {
  for (const kind of ["send", "verify"]) {
    const empty = mean(r.empty[0][kind].requests, r.empty[1][kind].requests);
    const ratio = r.full[kind].requests / empty;
    rows.push([
      r.name,
      kind,
      `${fmt(r.empty[0][kind].requests)} / ${fmt(r.empty[1][kind].requests)}`,
      fmt(r.full[kind].requests),
      `${fmt(ratio * 100)}%`,
      `${fmt(r.empty[0][kind].p99)}, ${fmt(r.empty[1][kind].p99)} / ${fmt(r.full[kind].p99)}`,
      ratio >= 1 - WITHIN ? `met (within ${WITHIN * 100}%)` : `NOT MET (within ${WITHIN * 100}%)`,
    ]);
  }
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  "));
console.log(
  `\nSeeded: ${CODES} codes over ${DAYS} days (${CHALLENGES} challenges), ${USERS} users, ${REFUSALS} refusals; ${results.runs.map((r) => `${r.name} seeded in ${fmt(r.seedMs / 1000)} s`).join(", ")}.`,
);
console.log(
  `Load average ${results.loadAtStart.map((n) => n.toFixed(2)).join(" ")} at the start, ${results.loadAtEnd.map((n) => n.toFixed(2)).join(" ")} at the end.`,
);
mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
writeFileSync(join(ROOT, "bench", "results", "scale.json"), `${JSON.stringify(results, null, 2)}\n`);
