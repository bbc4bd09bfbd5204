import type { Kysely } from "kysely";
import { counterStatements } from "./counter-statements.js";
import { otpStatements } from "./otp-statements.js";
import { protectionStatements } from "./protection-statements.js";
import type { Database } from "./schema.js";
import type { Counter } from "./store.js";

/** The statements both dialects share, compiled once per database. */
export function sharedStatements(db: Kysely<Database>) {
  return { codes: otpStatements(db), budget: protectionStatements(db), counters: counterStatements(db) };
}

export type SharedStatements = ReturnType<typeof sharedStatements>;

/** Counters as read from `key, count, reset_at` rows: absent or ended ones read as zero. */
export function countersOf(keys: readonly string[], rows: Record<string, unknown>[], now: number): Counter[] {
  const found = new Map<string, Counter>();
  for (const row of rows) found.set(String(row.key), { count: Number(row.count), resetAt: Number(row.reset_at) });
  return keys.map((key) => {
    const counter = found.get(key);
    return counter === undefined || counter.resetAt <= now ? { count: 0, resetAt: now } : counter;
  });
}
