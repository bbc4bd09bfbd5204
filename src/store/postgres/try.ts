import { type Kysely, sql } from "kysely";
import type { ChallengeKey } from "../../records.js";
import { perKeep } from "../otp-statements.js";
import { prepare, type Runner, statement } from "../prepared.js";
import type { Database } from "../schema.js";
import type { SharedStatements } from "../shared-statements.js";
import { challengeFrom, keyIdOf } from "../steps.js";
import type { LiveCode, VerifyRule, VerifyTry } from "../store.js";

interface TryValues {
  phone: string;
  purpose: string;
  user: string;
  maxAttempts: number;
  now: number;
}

/** A try's two statements on PostgreSQL (see `twoStatementTry`). */
export function tryStatements(db: Kysely<Database>) {
  return {
    /**
     * Counts the try, guarded by the budget, and reads the challenge's newest live codes in the same
     * statement. No row: the try was not counted (no live challenge, or its budget is spent). A row with a
     * null id: counted, but no live code.
     */
    countAndRead: perKeep((keep) =>
      prepare<TryValues>((p) => ({
        compile: () =>
          sql`with counted as (
              update otp_challenges set attempts = attempts + 1
              where phone_number = ${p.phone}::text and purpose = ${p.purpose}::text and user_id = ${p.user}::text
                and attempts < ${p.maxAttempts}::bigint and expires_at > ${p.now}::bigint
                and verified_at is null and locked_until is null
              returning attempts
            )
            select counted.attempts, live.id, live.code_hash, live.key_id, live.expires_at, live.channel
            from counted left join lateral (
              select id, code_hash, key_id, expires_at, channel from otp_codes
              where phone_number = ${p.phone}::text and purpose = ${p.purpose}::text and user_id = ${p.user}::text
                and status in ('pending', 'sent')
              order by created_at desc, id desc limit ${sql.lit(keep)}
            ) as live on true`.compile(db),
      })),
    ),
    /**
     * Consumes the picked code, guarded by its status and expiry (one winner however many race), and in
     * the same statement closes the challenge and retires its other live codes, only if it was consumed.
     */
    consumeAndClose: prepare<{ phone: string; purpose: string; user: string; id: string; now: number }>((p) => ({
      compile: () =>
        sql`with consumed as (
            update otp_codes set status = 'verified', verified_at = ${p.now}::bigint, code_hash = null, updated_at = ${p.now}::bigint
            where id = ${p.id}::text and status in ('pending', 'sent') and expires_at > ${p.now}::bigint
            returning id
          ),
          closed as (
            update otp_challenges set verified_at = ${p.now}::bigint
            where phone_number = ${p.phone}::text and purpose = ${p.purpose}::text and user_id = ${p.user}::text
              and exists (select 1 from consumed)
          ),
          retired as (
            update otp_codes set status = 'superseded', code_hash = null, updated_at = ${p.now}::bigint
            where phone_number = ${p.phone}::text and purpose = ${p.purpose}::text and user_id = ${p.user}::text
              and status in ('pending', 'sent') and id <> ${p.id}::text and exists (select 1 from consumed)
          )
          select count(*) as consumed from consumed`.compile(db),
    })),
  };
}

/**
 * A try in two statements, each in autocommit, instead of a transaction of five or six round trips that
 * held the challenge's row while the service compared: the count and the read of the live codes, then
 * the consumption of the picked code with the challenge's close. What makes a try safe holds statement by
 * statement: the count is one guarded UPDATE (parallel guesses never outrun the budget), and a code is
 * consumed by one UPDATE guarded by its status and expiry (of many right tries exactly one verifies; a
 * loser finds the challenge verified and is refused, as it was when it waited for the row). A registration
 * (the number marked verified on the user too) keeps the one-transaction step.
 */
export async function twoStatementTry(
  runner: Runner,
  statements: { own: ReturnType<typeof tryStatements>; shared: SharedStatements },
  parts: { key: ChallengeKey; rule: VerifyRule; match: (codes: LiveCode[]) => LiveCode | undefined },
  now: number,
): Promise<VerifyTry> {
  const { key, rule, match } = parts;
  const challenge = { phone: key.phoneNumber, purpose: key.purpose, user: key.userId };
  const counted = (
    await runner.one(statement(statements.own.countAndRead(rule.keepLive), { ...challenge, maxAttempts: rule.maxAttempts, now }))
  ).rows;
  const [first] = counted;
  if (first === undefined) return refused(runner, statements.shared, challenge);
  const live: LiveCode[] = counted
    .filter((row) => row.id !== null)
    .map((row) => ({
      id: String(row.id),
      codeHash: row.code_hash === null ? "" : String(row.code_hash),
      keyId: keyIdOf(row.key_id),
      expiresAt: Number(row.expires_at),
      channel: String(row.channel),
    }));
  const picked = match(live);
  if (picked === undefined) return { kind: "mismatch", attempts: Number(first.attempts), codes: live };
  const [done] = (await runner.one(statement(statements.own.consumeAndClose, { ...challenge, id: picked.id, now }))).rows;
  if (Number(done?.consumed ?? 0) !== 1) return refused(runner, statements.shared, challenge);
  return { kind: "verified", id: picked.id, channel: picked.channel };
}

/** A try that was not counted, or lost its code to another: the challenge's state says why. */
async function refused(
  runner: Runner,
  shared: SharedStatements,
  challenge: { phone: string; purpose: string; user: string },
): Promise<VerifyTry> {
  const [state] = (await runner.one(statement(shared.codes.challengeState, challenge))).rows;
  const [newest] = (await runner.one(statement(shared.codes.newestCode, challenge))).rows;
  return {
    kind: "refused",
    challenge: state === undefined ? null : challengeFrom(state),
    newest: newest === undefined ? null : { id: String(newest.id), channel: String(newest.channel) },
  };
}
