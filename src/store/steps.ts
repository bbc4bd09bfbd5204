import { type ChallengeKey, type ChallengeState, DEFAULT_KEY_ID } from "../records.js";
import type { SendInput } from "./adapter.js";
import type { OpenValues, OtpStatements } from "./otp-statements.js";
import { type Step, statement } from "./prepared.js";
import type { LiveCode, SendOpened, VerifyRule, VerifyTry } from "./store.js";

/**
 * Opens the challenge: its conditional upsert is the send's deciding write, and changes nothing when the
 * cooldown or a lock refuses (the challenge's state is then read for the reason).
 */
export function* openChallengeStep(codes: OtpStatements, open: OpenValues): Step<Extract<SendOpened, { kind: "opened" | "refused" }>> {
  const [row] = (yield statement(codes.openChallenge, open)).rows;
  if (row === undefined) return { kind: "refused", challenge: yield* readChallenge(codes, open) };
  return { kind: "opened", attempts: Number(row.attempts), sendCount: Number(row.send_count) };
}

/** Stores the code of an opened challenge, and supersedes its live codes beyond the newest `keepLive`. */
export function* storeCodeStep(codes: OtpStatements, input: SendInput, sendCount: number): Step<void> {
  const { open, code, rule, now } = input;
  // The named values first and the spread last: on Node 20's V8 an object literal that starts with a
  // spread and goes on with more fields builds new hidden classes on every call (about 1 µs per field).
  yield statement(codes.insertCode, { phone: open.phone, purpose: open.purpose, user: open.user, expiresAt: open.expiresAt, ...code });
  // Nothing to retire until the challenge has had more sends than live codes.
  if (sendCount > rule.keepLive) {
    yield statement(codes.supersedeOlder(rule.keepLive), { phone: open.phone, purpose: open.purpose, user: open.user, now });
  }
}

/**
 * One verification try: counted before the comparison (the budget can never be overrun, and on
 * PostgreSQL the UPDATE holds the challenge's row, so the tries of one challenge take turns); then `match`
 * picks among the live codes; the picked one is consumed by an UPDATE guarded by its status and expiry.
 * PostgreSQL's (a try alone, or its batch's fallback); SQLite runs sqlite/try-step.ts's instead.
 */
export function* tryStep(
  codes: OtpStatements,
  key: ChallengeKey,
  now: number,
  rule: VerifyRule,
  match: (live: LiveCode[]) => LiveCode | undefined,
): Step<VerifyTry> {
  const challenge = { phone: key.phoneNumber, purpose: key.purpose, user: key.userId };
  const counted = (yield statement(codes.countTry, { maxAttempts: rule.maxAttempts, now, ...challenge })).rows[0];
  if (counted === undefined) return yield* refusedTry(codes, challenge);
  const { rows } = yield statement(codes.liveCodes(rule.keepLive), challenge);
  const live = rows.map(liveCodeOf);
  const picked = match(live);
  if (picked === undefined) return { kind: "mismatch", attempts: Number(counted.attempts), codes: live };
  if ((yield statement(codes.consumeCode, { id: picked.id, now })).changes !== 1) return yield* refusedTry(codes, challenge);
  yield statement(codes.closeChallenge, { now, ...challenge });
  if (live.length > 1) yield statement(codes.retireLive, { status: "superseded", now, ...challenge });
  if (rule.markPhoneVerified) yield* markPhoneVerifiedStep(codes, key.userId, key.phoneNumber, now);
  return { kind: "verified", id: picked.id, channel: picked.channel };
}

/** Marks the number verified on the user, and unmarks it on any other account; false when the user is not local. */
export function* markPhoneVerifiedStep(codes: OtpStatements, user: string, phone: string, now: number): Step<boolean> {
  const marked = yield statement(codes.markPhoneVerified, { user, phone, now });
  if (marked.changes !== 1) return false;
  yield statement(codes.unverifyElsewhere, { user, phone, now });
  return true;
}

/** A row of `otp_codes` (id, code_hash, key_id, expires_at, channel) as a live code to compare. */
export function liveCodeOf(row: Record<string, unknown>): LiveCode {
  return {
    id: String(row.id),
    codeHash: row.code_hash === null ? "" : String(row.code_hash),
    keyId: keyIdOf(row.key_id),
    expiresAt: Number(row.expires_at),
    channel: String(row.channel),
  };
}

/** A try that was not counted: the challenge's state says why, its newest code is named in the audit. */
export function* refusedTry(codes: OtpStatements, challenge: { phone: string; purpose: string; user: string }): Step<VerifyTry> {
  const state = yield* readChallenge(codes, challenge);
  const [row] = (yield statement(codes.newestCode, challenge)).rows;
  return { kind: "refused", challenge: state, newest: row === undefined ? null : { id: String(row.id), channel: String(row.channel) } };
}

function* readChallenge(codes: OtpStatements, challenge: { phone: string; purpose: string; user: string }): Step<ChallengeState | null> {
  const [row] = (yield statement(codes.challengeState, challenge)).rows;
  return row === undefined ? null : challengeFrom(row);
}

/** The key a stored MAC was made under: codes stored before key ids have none, and were OTP_SECRET's. */
export function keyIdOf(value: unknown): string {
  return typeof value === "string" ? value : DEFAULT_KEY_ID;
}

/** A challenge row as its state. */
export function challengeFrom(row: Record<string, unknown>): ChallengeState {
  return {
    attempts: Number(row.attempts),
    sendCount: Number(row.send_count),
    lastSentAt: Number(row.last_sent_at),
    expiresAt: Number(row.expires_at),
    lockedUntil: row.locked_until === null ? null : Number(row.locked_until),
    verifiedAt: row.verified_at === null ? null : Number(row.verified_at),
  };
}
