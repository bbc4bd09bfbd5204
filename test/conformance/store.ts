import { describe, expect } from "vitest";
import type { ChallengeKey, OtpRecord } from "../../src/otp/types.js";
import type { Store } from "../../src/store/store.js";
import { conformance } from "./harness.js";

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
    country: "CR",
    priceMicros: null,
    priceFinal: false,
    fallbackFrom: null,
    ...overrides,
  };
}

const rule = { baseCooldownMs: 30_000, maxCooldownMs: 30_000, sendsToMax: 1, exempt: false, keepLive: 3 };
const verifyRule = { maxAttempts: 5, keepLive: 3, markPhoneVerified: false };
const HASH = "ab".repeat(32);

/** A send of a new code on the challenge at `at` (expiring ten minutes later unless told). */
function sendAt(store: Store, k: ChallengeKey, at: number, overrides: Partial<OtpRecord> = {}, exempt = false) {
  const code = record(k, { createdAt: at, expiresAt: at + 10 * MINUTE, ...overrides });
  return store.beginSend(code, at, { ...rule, exempt }).then((opened) => ({ opened, code }));
}

/** A try whose code matches the record with this hash, or none ("wrong"). */
const tryCode = (store: Store, k: ChallengeKey, at: number, hash = HASH, r = verifyRule) =>
  store.tryVerify(k, at, r, (codes) => codes.find((c) => c.expiresAt > at && c.codeHash === hash));

/** The Store contract, run against every implementation (SQLite and PostgreSQL). */
export function testStore(make: () => Promise<{ store: Store; cleanup: () => Promise<void> } | null>): void {
  const suite = conformance(async () => {
    const made = await make();
    return made === null ? null : { subject: made.store, cleanup: made.cleanup };
  });
  const { test, subject: store } = suite;

  describe("migrations", () => {
    test("running them again applies nothing", async () => {
      expect(await store.migrate()).toEqual([]);
      await store.ping();
    });
  });

  describe("beginSend", () => {
    test("opens a challenge and stores the code, then refuses within the cooldown (storing nothing) and allows after it", async () => {
      const k = key();
      const first = await sendAt(store, k, T0);
      expect(first.opened).toEqual({ attempts: 0, sendCount: 1 });
      expect(await store.findCode(first.code.id)).toEqual(first.code);
      const refused = await sendAt(store, k, T0 + 29_999);
      expect(refused.opened).toBeNull();
      expect(await store.findCode(refused.code.id)).toBeNull();
      expect((await sendAt(store, k, T0 + 30_000)).opened).toEqual({ attempts: 0, sendCount: 2 });
      const state = await store.getChallenge(k);
      expect(state?.lastSentAt).toBe(T0 + 30_000);
      expect(state?.expiresAt).toBe(T0 + 30_000 + 10 * MINUTE);
    });

    test("exempt sends (test numbers) skip the cooldown", async () => {
      const k = key();
      await sendAt(store, k, T0);
      expect((await sendAt(store, k, T0 + 1, {}, true)).opened).not.toBeNull();
    });

    test("of 10 parallel sends within one cooldown exactly one passes and one code is stored", async () => {
      const k = key();
      const results = await Promise.all(Array.from({ length: 10 }, () => sendAt(store, k, T0)));
      const passed = results.filter((r) => r.opened !== null);
      expect(passed).toHaveLength(1);
      const stored = await Promise.all(results.map((r) => store.findCode(r.code.id)));
      expect(stored.filter((r) => r !== null)).toHaveLength(1);
    });

    test("keeps the tries spent while the challenge lives and resets them once it is over", async () => {
      const k = key();
      await sendAt(store, k, T0);
      await tryCode(store, k, T0, "wrong");
      await tryCode(store, k, T0, "wrong");
      expect((await sendAt(store, k, T0 + MINUTE)).opened?.attempts).toBe(2);
      // After every code has expired, a new send starts a fresh challenge.
      expect((await sendAt(store, k, T0 + 12 * MINUTE)).opened).toEqual({ attempts: 0, sendCount: 1 });
    });

    test("keeps the newest three codes live and supersedes the rest", async () => {
      const k = key();
      const codes = [];
      for (let i = 0; i < 5; i++) codes.push((await sendAt(store, k, T0 + i * 30_000)).code);
      const statuses = await Promise.all(codes.map(async (c) => (await store.findCode(c.id))?.status));
      expect(statuses).toEqual(["superseded", "superseded", "pending", "pending", "pending"]);
      // The compared codes are the live ones, newest first.
      const seen: string[] = [];
      await store.tryVerify(k, T0 + 3 * MINUTE, verifyRule, (live) => {
        seen.push(...live.map((c) => c.id));
        return undefined;
      });
      expect(seen).toEqual([codes[4]?.id, codes[3]?.id, codes[2]?.id]);
    });
  });

  describe("tryVerify", () => {
    test("counts every try up to the budget and then refuses without asking", async () => {
      const k = key();
      await sendAt(store, k, T0);
      for (let i = 1; i <= 5; i++) expect(await tryCode(store, k, T0, "wrong")).toMatchObject({ kind: "mismatch", attempts: i });
      let asked = false;
      const last = await store.tryVerify(k, T0, verifyRule, () => {
        asked = true;
        return undefined;
      });
      expect(last).toEqual({ kind: "refused" });
      expect(asked).toBe(false);
      expect((await store.getChallenge(k))?.attempts).toBe(5);
    });

    test("50 parallel wrong tries never get more than the budget", async () => {
      const k = key();
      await sendAt(store, k, T0);
      const results = await Promise.all(Array.from({ length: 50 }, () => tryCode(store, k, T0, "wrong")));
      expect(results.filter((r) => r.kind === "mismatch")).toHaveLength(5);
      expect((await store.getChallenge(k))?.attempts).toBe(5);
    });

    test("of 20 parallel right tries exactly one verifies; the challenge closes and its other codes retire", async () => {
      const k = key();
      const older = (await sendAt(store, k, T0 - MINUTE, { codeHash: "cd".repeat(32) })).code;
      const { code } = await sendAt(store, k, T0);
      const results = await Promise.all(Array.from({ length: 20 }, () => tryCode(store, k, T0 + 1)));
      expect(results.filter((r) => r.kind === "verified")).toEqual([{ kind: "verified", id: code.id }]);
      expect(await store.findCode(code.id)).toMatchObject({ status: "verified", verifiedAt: T0 + 1 });
      expect((await store.findCode(older.id))?.status).toBe("superseded");
      expect((await store.getChallenge(k))?.verifiedAt).toBe(T0 + 1);
      expect(await tryCode(store, k, T0 + 2)).toEqual({ kind: "refused" });
    });

    test("refuses when there is no challenge or it has expired, and never verifies an expired code", async () => {
      const k = key();
      expect(await tryCode(store, k, T0)).toEqual({ kind: "refused" });
      await sendAt(store, k, T0);
      expect(await tryCode(store, k, T0 + 10 * MINUTE)).toEqual({ kind: "refused" });
      // Even a match callback that picks an expired code cannot consume it.
      const k2 = key();
      const { code } = await sendAt(store, k2, T0, { expiresAt: T0 + MINUTE });
      await sendAt(store, k2, T0 + MINUTE, { expiresAt: T0 + 11 * MINUTE }, true);
      const picked = await store.tryVerify(k2, T0 + 2 * MINUTE, verifyRule, (codes) => codes.find((c) => c.id === code.id));
      expect(picked).toEqual({ kind: "refused" });
      expect((await store.findCode(code.id))?.status).toBe("pending");
    });

    test("a registration code marks the user's number verified in the same step", async () => {
      const id = `usr_${++counter}`;
      await store.createUser({ id, username: `reg${counter}`, email: null, passwordHash: "x", phoneNumber: null, createdAt: T0 });
      const k = key({ userId: id, purpose: "registration" });
      await sendAt(store, k, T0);
      expect(await tryCode(store, k, T0 + 1, HASH, { ...verifyRule, markPhoneVerified: true })).toMatchObject({ kind: "verified" });
      expect(await store.findUserById(id)).toMatchObject({ phoneNumber: k.phoneNumber, phoneVerified: true });
    });
  });

  describe("lockChallenge", () => {
    test("kills live codes, refuses tries and sends until the lock ends, then starts afresh", async () => {
      const k = key();
      const { code } = await sendAt(store, k, T0);
      await store.lockChallenge(k, T0 + 10 * MINUTE, T0);
      expect((await store.findCode(code.id))?.status).toBe("locked");
      expect(await tryCode(store, k, T0 + 1)).toEqual({ kind: "refused" });
      expect((await sendAt(store, k, T0 + 5 * MINUTE)).opened).toBeNull();
      expect((await sendAt(store, k, T0 + 10 * MINUTE)).opened).toEqual({ attempts: 0, sendCount: 1 });
    });
  });

  describe("codes", () => {
    test("a record round-trips with its types intact", async () => {
      const k = key({ purpose: "password_reset" });
      const { code } = await sendAt(store, k, T0, { channel: "console", deliveryStatus: "not_sent", status: "sent" });
      expect(await store.findCode(code.id)).toEqual(code);
      expect(await store.findCode("otp_missing")).toBeNull();
    });

    test("parallel delivery answers are each committed by the time their call resolves", async () => {
      const sent = await Promise.all(Array.from({ length: 20 }, () => sendAt(store, key(), T0)));
      await Promise.all(
        sent.map(({ code }, i) =>
          store.updateDelivery(
            code.id,
            i % 2 === 0 ? { status: "sent", providerMessageId: `SM${i}` } : { status: "failed", providerErrorCode: "30006" },
            T0 + 1,
          ),
        ),
      );
      const stored = await Promise.all(sent.map(({ code }) => store.findCode(code.id)));
      expect(stored).toEqual(
        sent.map((_, i) =>
          expect.objectContaining(
            i % 2 === 0 ? { status: "sent", providerMessageId: `SM${i}` } : { status: "failed", providerErrorCode: "30006" },
          ),
        ),
      );
    });

    test("updateDelivery records the provider's answer but never revives a finished code", async () => {
      const k = key();
      const { code } = await sendAt(store, k, T0);
      await store.updateDelivery(code.id, { status: "sent", providerMessageId: "SM1", deliveryStatus: "queued" }, T0 + 1);
      expect(await store.findCode(code.id)).toMatchObject({ status: "sent", providerMessageId: "SM1", deliveryStatus: "queued" });
      expect(await tryCode(store, k, T0 + 2)).toMatchObject({ kind: "verified" });
      await store.updateDelivery(code.id, { status: "failed", providerErrorCode: "30008" }, T0 + 3);
      expect((await store.findCode(code.id))?.status).toBe("verified");
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
