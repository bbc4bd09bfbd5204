import type { ChallengeState } from "./types.js";

/** Pure rules of sends and tries: functions of (state, rule, now), no storage and no clock. */

export interface OtpRules {
  ttlSeconds: number;
  maxAttempts: number;
  resendCooldownSeconds: number;
  /** The cooldown doubles with each resend of one challenge, up to this. */
  resendCooldownMaxSeconds: number;
}

/**
 * The wait after the `sendCount`-th send of a live challenge: the base cooldown, doubled with each resend
 * (30 s, 60 s, 120 s…) up to the maximum. A challenge that is over starts again from the base.
 */
export function cooldownMs(sendCount: number, rules: Pick<OtpRules, "resendCooldownSeconds" | "resendCooldownMaxSeconds">): number {
  const base = rules.resendCooldownSeconds * 1000;
  const max = Math.max(base, rules.resendCooldownMaxSeconds * 1000);
  if (sendCount <= 1 || base === 0) return base;
  return Math.min(max, base * 2 ** Math.min(sendCount - 1, 30));
}

/** The first send count whose cooldown is the maximum (the SQL form of cooldownMs needs it). */
export function sendsToMaxCooldown(rules: Pick<OtpRules, "resendCooldownSeconds" | "resendCooldownMaxSeconds">): number {
  let sends = 1;
  while (cooldownMs(sends, rules) < Math.max(rules.resendCooldownSeconds, rules.resendCooldownMaxSeconds) * 1000 && sends < 31) sends++;
  return sends;
}

/** How many of the newest codes of one challenge stay valid, so that a late SMS still works. */
export const LIVE_CODES_PER_CHALLENGE = 3;

/** Whole seconds until `at`, at least 1: a Retry-After of 0 would invite an immediate retry that fails again. */
export function secondsUntil(at: number, now: number): number {
  return Math.max(1, Math.ceil((at - now) / 1000));
}

/** Why a send was refused and when the next one can pass. */
export function sendRefusal(state: ChallengeState, rules: OtpRules, now: number): { reason: "locked" | "cooldown"; retryAfter: number } {
  if (state.lockedUntil !== null && state.lockedUntil > now) {
    return { reason: "locked", retryAfter: secondsUntil(state.lockedUntil, now) };
  }
  const over = state.expiresAt <= now || state.verifiedAt !== null || state.lockedUntil !== null;
  return { reason: "cooldown", retryAfter: secondsUntil(state.lastSentAt + cooldownMs(over ? 1 : state.sendCount, rules), now) };
}

export type NoTryReason = { code: "otp_not_found" } | { code: "otp_expired" } | { code: "otp_attempts_exceeded"; retryAfter: number };

/** Why no try could be counted against a challenge (the store's tryVerify answered `refused`), from its state. */
export function noTryReason(state: ChallengeState | null, rules: OtpRules, now: number): NoTryReason {
  if (state === null || state.verifiedAt !== null) return { code: "otp_not_found" };
  if (state.lockedUntil !== null && state.lockedUntil > now) {
    return { code: "otp_attempts_exceeded", retryAfter: secondsUntil(state.lockedUntil, now) };
  }
  if (state.expiresAt <= now) return { code: "otp_expired" };
  if (state.attempts >= rules.maxAttempts) {
    return { code: "otp_attempts_exceeded", retryAfter: secondsUntil(state.expiresAt, now) };
  }
  return { code: "otp_not_found" };
}
