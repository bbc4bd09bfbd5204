import { type Kysely, sql } from "kysely";
import type { TryParts } from "../adapter.js";
import { type Challenge, type OtpStatements, perKeep } from "../otp-statements.js";
import { prepare, type Step, statement } from "../prepared.js";
import type { Database } from "../schema.js";
import { liveCodeOf, markPhoneVerifiedStep, refusedTry } from "../steps.js";
import type { VerifyTry } from "../store.js";

/** The statements of SQLite's verification try (sqliteTryStep). */
export function sqliteTryStatements(db: Kysely<Database>) {
  return {
    /**
     * The challenge's guards and its newest live codes, in one read: one row per code, or one with none.
     * Codes of the same millisecond in the order they were written (rowid, which the challenge index
     * holds), not by id as liveCodes does: the index then gives the order, without a sort per try.
     */
    challengeAndLive: perKeep((keep) =>
      prepare<Challenge>((p) => ({
        compile: () =>
          sql`select c.attempts, c.expires_at as challenge_expires_at, c.verified_at, c.locked_until,
              o.id, o.code_hash, o.key_id, o.expires_at, o.channel
            from otp_challenges c
            left join otp_codes o on o.phone_number = c.phone_number and o.purpose = c.purpose
              and o.user_id = c.user_id and o.status in ('pending', 'sent')
            where c.phone_number = ${p.phone} and c.purpose = ${p.purpose} and c.user_id = ${p.user}
            order by o.created_at desc, o.rowid desc
            limit ${sql.lit(keep)}`.compile(db),
      })),
    ),
    countTry: prepare<Challenge>((p) =>
      db
        .updateTable("otp_challenges")
        .set((eb) => ({ attempts: eb("attempts", "+", 1) }))
        .where("phone_number", "=", p.phone)
        .where("purpose", "=", p.purpose)
        .where("user_id", "=", p.user),
    ),
    /** The try counted and the challenge closed: a verified try's one write to it. */
    countAndClose: prepare<Challenge & { now: number }>((p) =>
      db
        .updateTable("otp_challenges")
        .set((eb) => ({ attempts: eb("attempts", "+", 1), verified_at: p.now }))
        .where("phone_number", "=", p.phone)
        .where("purpose", "=", p.purpose)
        .where("user_id", "=", p.user),
    ),
  };
}

export type SqliteTryStatements = ReturnType<typeof sqliteTryStatements>;

/**
 * One verification try on SQLite: what the shared tryStep (steps.ts) does, with the same outcomes, in one
 * statement fewer and none with a RETURNING clause (SQLite runs one through a temporary table: twice the
 * instructions of the same UPDATE without it). The challenge's guards and its live codes are one read;
 * the try is counted by one UPDATE, which also closes the challenge when the code matched. SQLite's
 * transactions run one at a time (runner.ts), so reading first and counting in the same transaction is
 * what counting first is on PostgreSQL, where the UPDATE has to come first to hold the challenge's row:
 * the try is counted whatever it finds, or the transaction, comparison and all, never happened.
 */
export function* sqliteTryStep(codes: OtpStatements, own: SqliteTryStatements, parts: TryParts, now: number): Step<VerifyTry> {
  const { key, rule, match } = parts;
  const challenge = { phone: key.phoneNumber, purpose: key.purpose, user: key.userId };
  const { rows } = yield statement(own.challengeAndLive(rule.keepLive), challenge);
  const head = rows[0];
  // The shared countTry's guards: tries left, not expired, neither verified nor locked.
  if (
    head === undefined ||
    Number(head.attempts) >= rule.maxAttempts ||
    Number(head.challenge_expires_at) <= now ||
    head.verified_at !== null ||
    head.locked_until !== null
  ) {
    return yield* refusedTry(codes, challenge);
  }
  const live = head.id === null ? [] : rows.map(liveCodeOf);
  const picked = match(live);
  if (picked === undefined) {
    yield statement(own.countTry, challenge);
    return { kind: "mismatch", attempts: Number(head.attempts) + 1, codes: live };
  }
  if ((yield statement(codes.consumeCode, { id: picked.id, now })).changes !== 1) {
    yield statement(own.countTry, challenge);
    return yield* refusedTry(codes, challenge);
  }
  yield statement(own.countAndClose, { now, ...challenge });
  if (live.length > 1) yield statement(codes.retireLive, { status: "superseded", now, ...challenge });
  if (rule.markPhoneVerified) yield* markPhoneVerifiedStep(codes, key.userId, key.phoneNumber, now);
  return { kind: "verified", id: picked.id, channel: picked.channel };
}
