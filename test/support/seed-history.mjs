// A SQLite database with months of history, written fast: each table filled by one INSERT … SELECT over
// a counting CTE, all in one transaction, on a database already migrated (`vericode migrate`, or
// SqlStore.migrate()). Shared by test/scale/maintenance.test.ts and bench/maintenance.mjs, so that the
// test and the benchmark run on the same data; plain JavaScript, so that the benchmark runs it with node.
//
// Measured on the 2-core machine of docs/benchmarks.md, for a million codes: a prepared insert run from
// JavaScript a million times took 26 s (binding the values costs more than SQLite's insert); the same rows
// made by SQLite itself take 10 s, most of it maintaining the four indexes of otp_codes.
import { closeSync, fsyncSync, openSync } from "node:fs";
import Database from "better-sqlite3";

const DAY_MS = 86_400_000;
const LIFETIME_MS = 10 * 60_000;

/** `list[expr % list.length]` in SQL. */
const pick = (list, expr) => `case (${expr}) % ${list.length} ${list.map((v, i) => `when ${i} then '${v}'`).join(" ")} end`;
const PURPOSES = ["registration", "login", "password_reset"];
const CHANNELS = ["sms", "sms", "sms", "whatsapp", "voice", "email"];
const COUNTRIES = ["CR", "US", "MX", "ES", "DE", "FR", "BR", "CA", "GB", "IT", "CO", "PA"];
const RULES = ["number", "user", "ip", "prefix", "global", "country"];
const ERRORS = ["21610", "21612", "21408", "30003"];

/**
 * The challenge (number, purpose, user) of challenge index `c`, as SQL expressions. The number is spread
 * by a multiplier, so that the key order of otp_challenges mixes old challenges with recent ones, as
 * real numbers do.
 */
const challengeKey = (c) => ({
  phone: `printf('+5068%07d', (${c}) * 7919113 % 10000000)`,
  purpose: pick(PURPOSES, c),
  user: `printf('usr_%032x', (${c}) % 50000)`,
});

/** Row numbers `first` … n-1 as `i`, with row i's time `created`: n rows spread evenly over [from, from + span). */
const numbered = (n, from, span, first = 0) => `with recursive n(i) as (select ${first} union all select i + 1 from n where i < ${n - 1})
  select i, ${from} + i * ${span} / ${n} as created from n`;

/**
 * Writes `codes` codes, `refusals` refusals and the `challenges` challenges the codes belong to (code i
 * to challenge i % challenges, each challenge as its last code left it) into the SQLite file at `path`,
 * spread evenly over the `days` days before `now`, oldest first. Ids look like the service's
 * (src/ids.ts: `otp_`, the creation time in 12 hex digits, 80 random bits). A code's status, channel,
 * country and delivery follow from its number, in the proportions of bench/report.mjs.
 *
 * @param {string} path a migrated SQLite database
 * @param {{ codes: number; refusals: number; challenges: number; days: number; now: number }} plan
 * @returns {{ ms: number; from: number }} how long it took, and the time of the oldest row
 */
export function seedHistory(path, plan) {
  const { codes, refusals, challenges, days, now } = plan;
  if (challenges > codes) throw new RangeError("every challenge needs a code: challenges <= codes");
  const from = now - days * DAY_MS;
  const span = days * DAY_MS;
  const started = performance.now();
  const db = new Database(path);
  // Nobody else has the file open yet: no journal, no fsync, a big page cache.
  db.pragma("journal_mode = OFF");
  db.pragma("synchronous = OFF");
  db.pragma("cache_size = -512000");
  const key = challengeKey(`i % ${challenges}`);
  const status = `case when roll < 62 then 'verified' when roll < 67 then 'failed' when roll < 69 then 'locked'
    when roll < 80 then 'superseded' else 'sent' end`;
  db.transaction(() => {
    db.exec(`insert into otp_codes (id, user_id, phone_number, purpose, code_hash, channel, status, created_at, expires_at,
        verified_at, provider_message_id, provider_error_code, delivery_status, updated_at, country, price_micros, price_final, fallback_from)
      select printf('otp_%012x', created) || lower(hex(randomblob(10))), ${key.user}, ${key.phone}, ${key.purpose}, '${"h".repeat(64)}',
        ${pick(CHANNELS, "i")}, status, created, created + ${LIFETIME_MS},
        case when status = 'verified' then created + 5000 + i * 7919 % 120000 end,
        case when status <> 'failed' then printf('SM%032x', i) end,
        case when status = 'failed' then ${pick(ERRORS, "i")} end,
        case when status = 'failed' then null when roll < 90 then 'delivered' else 'undelivered' end,
        created, ${pick(COUNTRIES, "i")}, case when status <> 'failed' then 40000 + i % 30000 end, 1, null
      from (select *, ${status} as status from (select *, i * 2654435761 % 100 as roll from (${numbered(codes, from, span)})))`);
    // Challenge c's last code is the last i with i % challenges = c: one of the last `challenges` codes.
    db.exec(`insert into otp_challenges (phone_number, purpose, user_id, attempts, send_count, last_sent_at, expires_at,
        locked_until, verified_at, created_at)
      select ${key.phone}, ${key.purpose}, ${key.user}, verified, i / ${challenges} + 1, created, created + ${LIFETIME_MS},
        null, case when verified = 1 then created + 5000 end, ${from} + i % ${challenges} * ${span} / ${codes}
      from (select *, case when i * 2654435761 % 100 < 62 then 1 else 0 end as verified
        from (${numbered(codes, from, span, codes - challenges)}))`);
    db.exec(`insert into otp_refusals (id, created_at, rule, code, purpose, user_id, country, phone_prefix, ip)
      select printf('ref_%012x', created) || lower(hex(randomblob(10))), created, ${pick(RULES, "i")}, 'rate_limited',
        ${key.purpose}, ${key.user}, 'CR', substr(${key.phone}, 1, 8), '203.0.113.' || (i % 250)
      from (${numbered(refusals, from, span)})`);
  })();
  db.exec("analyze");
  db.close();
  // Written without fsync: flushed now, so that the service's first checkpoint does not pay for it.
  const fd = openSync(path, "r+");
  fsyncSync(fd);
  closeSync(fd);
  return { ms: performance.now() - started, from };
}
