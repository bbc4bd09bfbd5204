import { VericodeError } from "../errors.js";
import type { VerifyResult } from "./types.js";

/** A verification that did not succeed. */
export type VerifyFailure = Extract<VerifyResult, { ok: false }>;

/**
 * The error a failed verification answers, the same wherever a code is verified (verify-otp, the
 * passwordless login, the password reset): its code, the tries left, when to try again and the rule.
 */
export function verifyError(result: VerifyFailure): VericodeError {
  return new VericodeError(result.code, result.message, {
    ...("retryAfter" in result ? { retryAfter: result.retryAfter } : {}),
    extra: {
      ...("attemptsRemaining" in result ? { attempts_remaining: result.attemptsRemaining } : {}),
      ...("rule" in result ? { rule: result.rule } : {}),
    },
  });
}
