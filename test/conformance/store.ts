import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChallengeKey, OtpRecord } from "../../src/otp/types.js";
import type { Store } from "../../src/store/store.js";

const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
let counter = 0;

function key(overrides: Partial<ChallengeKey> = {}): ChallengeKey {
  counter++;
  return { phoneNumber: `+5068888${String(counter).padStart(4, "0")}`, purpose: "login", userId: `usr_${counter}`, ...overrides };
}

function record(k: ChallengeKey, overrides: Partial<OtpRecord> = {}): OtpRecord {
  counter++;
  return {
    ...k,
    id: `otp_${counter.toString().padStart(8, "0")}`,
    codeHash: "ab".repeat(32),
    channel: "sms",
    status: "pending",
    createdAt: T0,
    expiresAt: T0 + 10 * MINUTE,
    verifiedAt: null,
    providerMessageId: null,
    providerErrorCode: null,
    deliveryStatus: null,
    ...overrides,
  };
}

const rule = { cooldownMs: 30_000, expiresAt: T0 + 10 * MINUTE, exempt: false };

/** The Store contract, run against every implementation (SQLite and PostgreSQL). */
export function testStore(make: () => Promise<{ store: Store; cleanup: () => Promise<void> } | null>): void {
  let store: Store;
  let cleanup: () => Promise<void> = async () => {};
  let skip = false;

  beforeAll(async () => {
    const made = await make();
    if (made === null) {
      skip = true;
      return;
    }
    ({ store, cleanup } = made);
  });
  afterAll(async () => cleanup());

  const test = (name: string, body: () => Promise<void>) =>
    it(name, async (context) => {
      if (skip) context.skip();
      await body();
    });

  describe("migrations", () => {
    test("running them again applies nothing", async () => {
      expect(await store.migrate()).toEqual([]);
      await store.ping();
    });
  });

  describe("beginSend", () => {
    test("opens a challenge, then refuses within the cooldown and allows after it", async () => {
      const k = key();
      expect(await store.beginSend(k, T0, rule)).toEqual({ attempts: 0, sendCount: 1 });
      expect(await store.beginSend(k, T0 + 29_999, rule)).toBeNull();
      expect(await store.beginSend(k, T0 + 30_000, { ...rule, expiresAt: T0 + 30_000 + 10 * MINUTE })).toEqual({
        attempts: 0,
        sendCount: 2,
      });
      const state = await store.getChallenge(k);
      expect(state?.lastSentAt).toBe(T0 + 30_000);
      expect(state?.expiresAt).toBe(T0 + 30_000 + 10 * MINUTE);
    });

    test("exempt sends (test numbers) skip the cooldown", async () => {
      const k = key();
      await store.beginSend(k, T0, rule);
      expect(await store.beginSend(k, T0 + 1, { ...rule, exempt: true })).not.toBeNull();
    });

    test("of 10 parallel sends within one cooldown exactly one passes", async () => {
      const k = key();
      const results = await Promise.all(Array.from({ length: 10 }, () => store.beginSend(k, T0, rule)));
      expect(results.filter((r) => r !== null)).toHaveLength(1);
    });

    test("keeps the tries spent while the challenge lives and resets them once it is over", async () => {
      const k = key();
      await store.beginSend(k, T0, rule);
      await store.consumeAttempt(k, T0, 5);
      await store.consumeAttempt(k, T0, 5);
      expect((await store.beginSend(k, T0 + MINUTE, { ...rule, expiresAt: T0 + 11 * MINUTE }))?.attempts).toBe(2);
      // After every code has expired, a new send starts a fresh challenge.
      expect(await store.beginSend(k, T0 + 12 * MINUTE, { ...rule, expiresAt: T0 + 22 * MINUTE })).toEqual({ attempts: 0, sendCount: 1 });
    });
  });

  describe("consumeAttempt", () => {
    test("counts up to the budget and then refuses", async () => {
      const k = key();
      await store.beginSend(k, T0, rule);
      for (let i = 1; i <= 5; i++) expect(await store.consumeAttempt(k, T0, 5)).toEqual({ attempts: i });
      expect(await store.consumeAttempt(k, T0, 5)).toBeNull();
      expect((await store.getChallenge(k))?.attempts).toBe(5);
    });

    test("50 parallel tries never get more than the budget", async () => {
      const k = key();
      await store.beginSend(k, T0, rule);
      const results = await Promise.all(Array.from({ length: 50 }, () => store.consumeAttempt(k, T0, 5)));
      expect(results.filter((r) => r !== null)).toHaveLength(5);
      expect((await store.getChallenge(k))?.attempts).toBe(5);
    });

    test("refuses when there is no challenge or it has expired", async () => {
      const k = key();
      expect(await store.consumeAttempt(k, T0, 5)).toBeNull();
      await store.beginSend(k, T0, rule);
      expect(await store.consumeAttempt(k, T0 + 10 * MINUTE, 5)).toBeNull();
    });
  });

  describe("lockChallenge", () => {
    test("kills live codes, refuses tries and sends until the lock ends, then starts afresh", async () => {
      const k = key();
      await store.beginSend(k, T0, rule);
      const code = record(k);
      await store.insertCode(code, 3);
      await store.lockChallenge(k, T0 + 10 * MINUTE, T0);
      expect((await store.findCode(code.id))?.status).toBe("locked");
      expect(await store.liveCodes(k, 3)).toEqual([]);
      expect(await store.consumeAttempt(k, T0 + 1, 5)).toBeNull();
      expect(await store.beginSend(k, T0 + 5 * MINUTE, rule)).toBeNull();
      expect(await store.beginSend(k, T0 + 10 * MINUTE, { ...rule, expiresAt: T0 + 20 * MINUTE })).toEqual({
        attempts: 0,
        sendCount: 1,
      });
    });
  });

  describe("codes", () => {
    test("insertCode keeps the newest three live and supersedes the rest", async () => {
      const k = key();
      const codes = Array.from({ length: 5 }, (_, i) => record(k, { createdAt: T0 + i * 1000 }));
      for (const code of codes) await store.insertCode(code, 3);
      const live = await store.liveCodes(k, 3);
      expect(live.map((c) => c.id)).toEqual([codes[4]?.id, codes[3]?.id, codes[2]?.id]);
      expect((await store.findCode(codes[0]?.id ?? ""))?.status).toBe("superseded");
      expect((await store.findCode(codes[1]?.id ?? ""))?.status).toBe("superseded");
    });

    test("insertCode without keepLive retires nothing; liveCodes still answers only the newest", async () => {
      const k = key();
      const codes = Array.from({ length: 4 }, (_, i) => record(k, { createdAt: T0 + i * 1000 }));
      for (const code of codes) await store.insertCode(code, null);
      expect((await store.findCode(codes[0]?.id ?? ""))?.status).toBe("pending");
      expect((await store.liveCodes(k, 3)).map((c) => c.id)).toEqual([codes[3]?.id, codes[2]?.id, codes[1]?.id]);
    });

    test("a record round-trips with its types intact", async () => {
      const k = key({ purpose: "password_reset" });
      const code = record(k, { channel: "console" });
      await store.insertCode(code, 3);
      expect(await store.findCode(code.id)).toEqual(code);
      expect(await store.findCode("otp_missing")).toBeNull();
    });

    test("updateDelivery records the provider's answer but never revives a finished code", async () => {
      const k = key();
      await store.beginSend(k, T0, rule);
      const code = record(k);
      await store.insertCode(code, 3);
      await store.updateDelivery(code.id, { status: "sent", providerMessageId: "SM1", deliveryStatus: "queued" }, T0 + 1);
      expect(await store.findCode(code.id)).toMatchObject({ status: "sent", providerMessageId: "SM1", deliveryStatus: "queued" });
      expect(await store.consumeCode(code.id, k, T0 + 2)).toBe(true);
      await store.updateDelivery(code.id, { status: "failed", providerErrorCode: "30008" }, T0 + 3);
      expect((await store.findCode(code.id))?.status).toBe("verified");
    });

    test("of 20 parallel consumeCode calls exactly one wins, and the challenge closes", async () => {
      const k = key();
      await store.beginSend(k, T0, rule);
      const older = record(k, { createdAt: T0 - 1000 });
      const code = record(k);
      await store.insertCode(older, 3);
      await store.insertCode(code, 3);
      const results = await Promise.all(Array.from({ length: 20 }, () => store.consumeCode(code.id, k, T0 + 1)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await store.findCode(code.id)).toMatchObject({ status: "verified", verifiedAt: T0 + 1 });
      expect((await store.findCode(older.id))?.status).toBe("superseded");
      expect((await store.getChallenge(k))?.verifiedAt).toBe(T0 + 1);
      expect(await store.consumeAttempt(k, T0 + 2, 5)).toBeNull();
    });

    test("an expired code cannot be consumed", async () => {
      const k = key();
      const code = record(k);
      await store.insertCode(code, 3);
      expect(await store.consumeCode(code.id, k, code.expiresAt)).toBe(false);
    });
  });

  describe("users", () => {
    test("create, find, refuse duplicates, mark the phone verified", async () => {
      const id = `usr_${++counter}`;
      const user = await store.createUser({
        id,
        username: `user${counter}`,
        email: `user${counter}@example.com`,
        passwordHash: "scrypt$x",
        phoneNumber: null,
        createdAt: T0,
      });
      expect(user).toMatchObject({ id, phoneVerified: false, role: "user", tokenVersion: 0 });
      expect(
        await store.createUser({
          id: "usr_other",
          username: `user${counter}`,
          email: null,
          passwordHash: "x",
          phoneNumber: null,
          createdAt: T0,
        }),
      ).toEqual({
        conflict: "username",
      });
      expect(
        await store.createUser({
          id: "usr_other2",
          username: null,
          email: `user${counter}@example.com`,
          passwordHash: "x",
          phoneNumber: null,
          createdAt: T0,
        }),
      ).toEqual({ conflict: "email" });
      expect((await store.findUserByLogin({ username: `user${counter}` }))?.id).toBe(id);
      expect((await store.findUserByLogin({ email: `user${counter}@example.com` }))?.id).toBe(id);
      expect(await store.findUserByLogin({ username: "nobody" })).toBeNull();
      expect(await store.markPhoneVerified(id, "+50688887777", T0)).toBe(true);
      expect(await store.findUserById(id)).toMatchObject({ phoneNumber: "+50688887777", phoneVerified: true });
      expect(await store.markPhoneVerified("usr_unknown", "+50688887777", T0)).toBe(false);
    });
  });
}
