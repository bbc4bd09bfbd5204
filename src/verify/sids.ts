import { randomHex } from "../ids.js";

/** Twilio's resource prefixes: service, verification, send attempt, rate limit, bucket. */
export type SidPrefix = "VA" | "VE" | "VL" | "RK" | "BL";

/**
 * A sid as Twilio writes them: the prefix and 32 lower-case hex digits. Verifications and send attempts
 * (a row each per start) begin with their creation time in milliseconds (48 bits, as UUIDv7 and vericode's
 * `otp_…` ids do), then 80 random bits: rows written together sit side by side in their primary-key index.
 * The others are 128 random bits.
 */
export function newSid(prefix: SidPrefix, now: number = Date.now()): string {
  if (prefix !== "VE" && prefix !== "VL") return prefix + randomHex(16);
  return `${prefix}${now.toString(16).padStart(12, "0").slice(-12)}${randomHex(10)}`;
}

export function isSid(prefix: SidPrefix, value: string): boolean {
  return value.length === 34 && value.startsWith(prefix) && /^[0-9a-fA-F]{32}$/.test(value.slice(2));
}
