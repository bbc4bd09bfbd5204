import { randomFillSync } from "node:crypto";

/** Random bytes drawn 4 KiB at a time: one call into the CSPRNG per 256 ids instead of one per id. */
const pool = Buffer.alloc(4096);
let offset = pool.length;

/** `bytes` random bytes from the CSPRNG, as hex. */
export function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString("hex", offset, offset + bytes);
  offset += bytes;
  return hex;
}

/**
 * Prefixed, unguessable ids, 32 lower-case hex digits after the prefix.
 *
 * - `usr_…`: 128 random bits from the CSPRNG.
 * - `otp_…` and `ref_…` (codes and refusals, a row per send): the creation time in milliseconds (48 bits,
 *   as UUIDv7 does) followed by 80 random bits. Rows written together then sit side by side in the
 *   primary-key index, so a commit writes one page of it instead of one page per send; 80 random bits
 *   still leave nothing to guess. A code's id tells when it was created, which its record says anyway.
 */
export function newId(prefix: "otp" | "usr" | "ref", now: number = Date.now()): string {
  if (prefix === "usr") return `usr_${randomHex(16)}`;
  return `${prefix}_${now.toString(16).padStart(12, "0").slice(-12)}${randomHex(10)}`;
}
