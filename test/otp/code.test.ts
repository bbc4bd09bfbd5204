import { describe, expect, it } from "vitest";
import { CodeKeys, findMatchingMac, generateCode, hashCode } from "../../src/otp/code.js";
import { cooldownMs, noTryReason, secondsUntil, sendRefusal, sendsToMaxCooldown } from "../../src/otp/policy.js";

const key = { phoneNumber: "+50688887777", purpose: "login" as const, userId: "usr_1" };

describe("codes", () => {
  it("are the configured number of digits, leading zeros included, and spread over all digits", () => {
    const codes = Array.from({ length: 2000 }, () => generateCode(6));
    expect(codes.every((c) => /^\d{6}$/.test(c))).toBe(true);
    const firstDigits = new Set(codes.map((c) => c[0]));
    expect(firstDigits.size).toBe(10);
    expect(generateCode(10)).toMatch(/^\d{10}$/);
    expect(new Set(codes).size).toBeGreaterThan(1900);
  });

  it("hash to an HMAC bound to number, purpose, user and secret", () => {
    const base = hashCode("secret", key, "123456");
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(base).not.toContain("123456");
    expect(hashCode("secret", key, "123456")).toBe(base);
    expect(hashCode("secret", key, "123457")).not.toBe(base);
    expect(hashCode("other", key, "123456")).not.toBe(base);
    expect(hashCode("secret", { ...key, phoneNumber: "+50688887778" }, "123456")).not.toBe(base);
    expect(hashCode("secret", { ...key, purpose: "registration" }, "123456")).not.toBe(base);
    expect(hashCode("secret", { ...key, userId: "usr_2" }, "123456")).not.toBe(base);
  });

  it("match against every stored MAC under its own key and answer the index; a code whose key is gone never matches", () => {
    const keys = new CodeKeys([
      { id: "new", secret: "n".repeat(32) },
      { id: "old", secret: "o".repeat(32) },
    ]);
    const stored = [
      { mac: hashCode("o".repeat(32), key, "111111"), keyId: "old" },
      { mac: keys.seal(key, "222222").codeHash, keyId: "new" },
      { mac: hashCode("g".repeat(32), key, "333333"), keyId: "gone" },
    ];
    expect(keys.seal(key, "222222").keyId).toBe("new");
    const entries = (code: string) => {
      const expected = keys.expected(key, code);
      return stored.map(({ mac, keyId }) => ({ stored: mac, expected: expected(keyId) }));
    };
    expect(findMatchingMac(entries("111111"))).toBe(0);
    expect(findMatchingMac(entries("222222"))).toBe(1);
    expect(findMatchingMac(entries("333333"))).toBe(-1);
    expect(findMatchingMac(entries("444444"))).toBe(-1);
    expect(findMatchingMac([])).toBe(-1);
    expect(() => new CodeKeys([])).toThrow(TypeError);
  });
});

describe("rules", () => {
  const rules = { ttlSeconds: 600, maxAttempts: 5, resendCooldownSeconds: 30, resendCooldownMaxSeconds: 300 };
  const state = { attempts: 0, sendCount: 1, lastSentAt: 0, expiresAt: 600_000, lockedUntil: null, verifiedAt: null };

  it("Retry-After is whole seconds, rounded up, at least 1", () => {
    expect(secondsUntil(1001, 0)).toBe(2);
    expect(secondsUntil(0, 0)).toBe(1);
    expect(secondsUntil(30_000, 0)).toBe(30);
  });

  it("a refused send waits for the cooldown, or for the lock to end", () => {
    expect(sendRefusal(state, rules, 10_000)).toEqual({ reason: "cooldown", retryAfter: 20 });
    expect(sendRefusal({ ...state, lockedUntil: 500_000 }, rules, 100_000)).toEqual({ reason: "locked", retryAfter: 400 });
  });

  it("the resend cooldown doubles with each send of a live challenge, up to the maximum", () => {
    expect([1, 2, 3, 4, 5, 6, 40].map((sends) => cooldownMs(sends, rules) / 1000)).toEqual([30, 60, 120, 240, 300, 300, 300]);
    expect(sendsToMaxCooldown(rules)).toBe(5);
    expect(cooldownMs(3, { resendCooldownSeconds: 0, resendCooldownMaxSeconds: 300 })).toBe(0);
    expect(sendsToMaxCooldown({ resendCooldownSeconds: 30, resendCooldownMaxSeconds: 30 })).toBe(1);
    // The third send of a live challenge waits 120 s; a challenge that is over waits the base only.
    expect(sendRefusal({ ...state, sendCount: 3 }, rules, 10_000)).toEqual({ reason: "cooldown", retryAfter: 110 });
    expect(sendRefusal({ ...state, sendCount: 3, verifiedAt: 5 }, rules, 10_000)).toEqual({ reason: "cooldown", retryAfter: 20 });
  });

  it("says why no try could be counted", () => {
    expect(noTryReason(null, rules, 0)).toEqual({ code: "otp_not_found" });
    expect(noTryReason({ ...state, verifiedAt: 5 }, rules, 10)).toEqual({ code: "otp_not_found" });
    expect(noTryReason(state, rules, 600_000)).toEqual({ code: "otp_expired" });
    expect(noTryReason({ ...state, lockedUntil: 600_000, attempts: 5 }, rules, 1000)).toEqual({
      code: "otp_attempts_exceeded",
      retryAfter: 599,
    });
  });
});
