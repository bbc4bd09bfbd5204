import { createHmac, randomInt, timingSafeEqual } from "node:crypto";
import type { OtpKey } from "../records.js";
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
 * The codes' keys (OTP_SECRETS): a new code's MAC is made under the first, a stored one is checked under
 * the key it names, so a key can rotate while the codes made under the old one are in flight.
 */
export class CodeKeys {
  readonly #secrets: ReadonlyMap<string, string>;
  readonly #signing: OtpKey;

  constructor(keys: readonly OtpKey[]) {
    const [signing] = keys;
    if (signing === undefined) throw new TypeError("at least one key is needed to store codes");
    this.#signing = signing;
    this.#secrets = new Map(keys.map((key) => [key.id, key.secret]));
  }

  /** The MAC a new code is stored as, and the id of the key it was made under. */
  seal(key: ChallengeKey, code: string): { codeHash: string; keyId: string } {
    return { codeHash: hashCode(this.#signing.secret, key, code), keyId: this.#signing.id };
  }

  /**
   * The MAC a try's code would have under a stored code's key, each computed once; null when that key is
   * no longer configured, so such a code never verifies (fails closed).
   */
  expected(key: ChallengeKey, code: string): (keyId: string) => string | null {
    const computed = new Map<string, string | null>();
    return (keyId) => {
      let mac = computed.get(keyId);
      if (mac === undefined) {
        const secret = this.#secrets.get(keyId);
        mac = secret === undefined ? null : hashCode(secret, key, code);
        computed.set(keyId, mac);
      }
      return mac;
    };
  }
}

/**
 * Answers the index of the first stored MAC equal to the one expected beside it, or -1. Compares in
 * constant time and looks at every entry whatever matches, so timing tells nothing about which code or
 * how close; an entry whose key is gone (expected null) never matches.
 */
export function findMatchingMac(entries: readonly { stored: string; expected: string | null }[]): number {
  let found = -1;
  entries.forEach(({ stored, expected }, index) => {
    if (expected === null) return;
    const wanted = Buffer.from(expected, "hex");
    const other = Buffer.from(stored, "hex");
    if (other.length === wanted.length && timingSafeEqual(other, wanted) && found === -1) found = index;
  });
  return found;
}
