import { describe, expect, it } from "vitest";
import { basicAuth, renderCheck, renderVerification } from "../../src/http/verify-wire.js";
import type { VerificationRecord } from "../../src/store/verify-store.js";
import { VerifyError } from "../../src/verify/errors.js";

const ACCOUNT = `AC${"a1".repeat(16)}`;
const TOKEN = "t".repeat(32);
const KEY = `SK${"b2".repeat(16)}`;
const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString("base64")}`;
const refused = (check: () => void) => {
  try {
    check();
  } catch (error) {
    return error instanceof VerifyError && error.code === 20003;
  }
  return false;
};

describe("basicAuth", () => {
  it("accepts the account's token and its API keys again and again; refuses anything else every time", () => {
    const keys = new Map<string, string>([[KEY, "secret-of-the-key"]]);
    const authenticate = basicAuth({ accountSid: ACCOUNT, authToken: TOKEN, apiKeys: keys });
    for (let i = 0; i < 3; i++) {
      expect(() => authenticate(basic(ACCOUNT, TOKEN))).not.toThrow();
      expect(() => authenticate(basic(KEY, "secret-of-the-key"))).not.toThrow();
      expect(refused(() => authenticate(undefined))).toBe(true);
      expect(refused(() => authenticate(basic(ACCOUNT, `${TOKEN}x`)))).toBe(true);
      expect(refused(() => authenticate(basic(KEY, TOKEN)))).toBe(true);
    }
  });

  it("keeps at most 64 accepted headers: past that it starts again, and still accepts and refuses alike", () => {
    const keys = new Map(Array.from({ length: 70 }, (_, i) => [`SK${String(i).padStart(32, "0")}`, `secret-${i}`] as const));
    const authenticate = basicAuth({ accountSid: ACCOUNT, authToken: TOKEN, apiKeys: keys });
    for (const [sid, secret] of keys) expect(() => authenticate(basic(sid, secret))).not.toThrow();
    for (const [sid, secret] of keys) {
      expect(() => authenticate(basic(sid, secret))).not.toThrow();
      expect(refused(() => authenticate(basic(sid, `${secret}!`)))).toBe(true);
    }
  });
});

describe("renderVerification and renderCheck", () => {
  it("share their first eleven fields, value for value", () => {
    const v: VerificationRecord = {
      sid: `VE${"c3".repeat(16)}`,
      serviceSid: `VA${"d4".repeat(16)}`,
      to: "+50688887777",
      channel: "whatsapp",
      status: "approved",
      nonce: "n",
      keyId: "default",
      codeLength: 6,
      locale: null,
      sendCount: 1,
      checkCount: 1,
      createdAt: Date.UTC(2026, 10, 26, 0, 37, 47, 123),
      updatedAt: Date.UTC(2026, 10, 26, 0, 38, 2, 999),
      expiresAt: Date.UTC(2026, 10, 26, 0, 47, 47),
    };
    const wire = { base: "https://otp.example.com/v2", accountSid: ACCOUNT };
    const check = renderCheck(wire, v);
    const verification = renderVerification(wire, { verification: v, attempts: [], lookup: null });
    const shared = Object.keys(check).filter((key) => key !== "sna_attempts_error_codes");
    expect(shared).toHaveLength(11);
    for (const key of shared)
      expect([key, verification[key as keyof typeof verification]]).toEqual([key, check[key as keyof typeof check]]);
    expect(check).toMatchObject({ channel: "whatsapp", status: "approved", valid: true, date_created: "2026-11-26T00:37:47Z" });
    expect(check.date_updated).toBe("2026-11-26T00:38:02Z");
  });
});
