import { randomBytes } from "node:crypto";

/** Twilio's resource prefixes: service, verification, send attempt, rate limit, bucket. */
export type SidPrefix = "VA" | "VE" | "VL" | "RK" | "BL";

/** A sid as Twilio writes them: the prefix and 32 lower-case hex digits (128 random bits). */
export function newSid(prefix: SidPrefix): string {
  return prefix + randomBytes(16).toString("hex");
}

export function isSid(prefix: SidPrefix, value: string): boolean {
  return value.length === 34 && value.startsWith(prefix) && /^[0-9a-fA-F]{32}$/.test(value.slice(2));
}
