import { createHmac, randomInt, timingSafeEqual } from "node:crypto";
import type { ChallengeKey } from "./types.js";

/** A uniformly random code of `length` digits, leading zeros kept (crypto.randomInt, no modulo bias). */
export function generateCode(length: number): string {
  let code = "";
  for (let i = 0; i < length; i++) code += randomInt(10).toString();
  return code;
}

/**
 * The only form in which a code is stored: HMAC-SHA256 under OTP_SECRET over the code and its challenge,
 * so a code is worthless for any other number, purpose or user, and a database leak reveals no code.
 */
export function hashCode(secret: string, key: ChallengeKey, code: string): string {
  // The unit separator cannot occur in any field, so no two different inputs share a message.
  return createHmac("sha256", secret).update([key.phoneNumber, key.purpose, key.userId, code].join("\x1f")).digest("hex");
}

/**
 * Answers the index of the stored hash equal to `candidate`, or -1. Compares in constant time and
 * looks at every entry whatever matches, so timing tells nothing about which code or how close.
 */
export function findMatchingHash(candidate: string, stored: readonly string[]): number {
  const wanted = Buffer.from(candidate, "hex");
  let found = -1;
  stored.forEach((hash, index) => {
    const other = Buffer.from(hash, "hex");
    if (other.length === wanted.length && timingSafeEqual(other, wanted) && found === -1) found = index;
  });
  return found;
}
