import { createHmac, timingSafeEqual } from "node:crypto";
import { randomHex } from "../ids.js";
import type { OtpKey } from "../records.js";

/**
 * A Verify code is the same on every resend of its verification (Twilio's behaviour), yet never stored: it
 * is derived, when it is sent and when it is checked, from the server's key and the verification's sid and
 * random nonce. A dump of the database alone (sids, nonces) reveals no code; the key alone neither.
 */
export class VerifyCodes {
  readonly #secrets: ReadonlyMap<string, string>;
  readonly #signing: OtpKey;

  constructor(keys: readonly OtpKey[]) {
    const [signing] = keys;
    if (signing === undefined) throw new TypeError("at least one key is needed to derive codes");
    this.#signing = signing;
    this.#secrets = new Map(keys.map((key) => [key.id, key.secret]));
  }

  /** The key a new verification's code is derived under, and a fresh nonce for it. */
  fresh(): { keyId: string; nonce: string } {
    return { keyId: this.#signing.id, nonce: randomHex(16) };
  }

  /**
   * The code: HMAC-SHA256(key, "verify" ‖ sid ‖ nonce), its first 8 bytes as a number modulo 10^length
   * (a bias below 10^-9), leading zeros kept. Null when the key is no longer configured (fails closed).
   */
  code(verification: { sid: string; nonce: string; keyId: string; codeLength: number }): string | null {
    const secret = this.#secrets.get(verification.keyId);
    if (secret === undefined) return null;
    const mac = createHmac("sha256", secret).update(["verify", verification.sid, verification.nonce].join("\x1f")).digest();
    const value = mac.readBigUInt64BE(0) % 10n ** BigInt(verification.codeLength);
    return value.toString().padStart(verification.codeLength, "0");
  }
}

/** Compares a typed code with the expected one in constant time (a length mismatch is simply false). */
export function sameCode(given: string, expected: string | null): boolean {
  if (expected === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
