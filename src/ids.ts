import { randomBytes } from "node:crypto";

/** Prefixed, unguessable ids (`otp_…`, `usr_…`): 128 random bits, base32hex-free lower-case hex. */
export function newId(prefix: "otp" | "usr" | "ref"): string {
  return `${prefix}_${randomBytes(16).toString("hex")}`;
}
