import type { ChallengeState } from "./types.js";

/** Pure rules of sends and tries: functions of (state, rule, now), no storage and no clock. */

export interface OtpRules {
  ttlSeconds: number;
  maxAttempts: number;
  resendCooldownSeconds: number;
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
  return { reason: "cooldown", retryAfter: secondsUntil(state.lastSentAt + rules.resendCooldownSeconds * 1000, now) };
}

export type NoTryReason = { code: "otp_not_found" } | { code: "otp_expired" } | { code: "otp_attempts_exceeded"; retryAfter: number };

/** Why no try could be counted against a challenge (consumeAttempt answered null). */
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
