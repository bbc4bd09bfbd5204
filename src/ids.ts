import { randomFillSync } from "node:crypto";

/** Random bytes drawn 4 KiB at a time: one call into the CSPRNG per 256 ids instead of one per id. */
const pool = Buffer.alloc(4096);
let offset = pool.length;

/** Prefixed, unguessable ids (`otp_…`, `usr_…`): 128 random bits from the CSPRNG, lower-case hex. */
export function newId(prefix: "otp" | "usr" | "ref"): string {
  if (offset + 16 > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString("hex", offset, offset + 16);
  offset += 16;
  return `${prefix}_${id}`;
}
