import { describe, expect } from "vitest";
import type { ChallengeKey, OtpRecord } from "../../src/otp/types.js";
import type { LiveCode, SendOpened, Store } from "../../src/store/store.js";
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
    keyId: "k1",
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

/** An opened send's figures; null for any refusal. */
const openedOf = (result: SendOpened) => (result.kind === "opened" ? { attempts: result.attempts, sendCount: result.sendCount } : null);

/** A send of a new code on the challenge at `at` (expiring ten minutes later unless told). */
function sendAt(store: Store, k: ChallengeKey, at: number, overrides: Partial<OtpRecord> = {}, exempt = false) {
  const code = record(k, { createdAt: at, expiresAt: at + 10 * MINUTE, ...overrides });
  return store.beginSend(code, at, { ...rule, exempt }).then((result) => ({ opened: openedOf(result), result, code }));
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
      expect(last).toMatchObject({ kind: "refused" });
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
      expect(results.filter((r) => r.kind === "verified")).toEqual([{ kind: "verified", id: code.id, channel: "sms" }]);
      expect(await store.findCode(code.id)).toMatchObject({ status: "verified", verifiedAt: T0 + 1 });
      expect((await store.findCode(older.id))?.status).toBe("superseded");
      expect((await store.getChallenge(k))?.verifiedAt).toBe(T0 + 1);
      expect(await tryCode(store, k, T0 + 2)).toMatchObject({ kind: "refused" });
    });

    test("refuses when there is no challenge or it has expired, and never verifies an expired code", async () => {
      const k = key();
      expect(await tryCode(store, k, T0)).toMatchObject({ kind: "refused" });
      await sendAt(store, k, T0);
      expect(await tryCode(store, k, T0 + 10 * MINUTE)).toMatchObject({ kind: "refused" });
      // Even a match callback that picks an expired code cannot consume it.
      const k2 = key();
      const { code } = await sendAt(store, k2, T0, { expiresAt: T0 + MINUTE });
      await sendAt(store, k2, T0 + MINUTE, { expiresAt: T0 + 11 * MINUTE }, true);
      const picked = await store.tryVerify(k2, T0 + 2 * MINUTE, verifyRule, (codes) => codes.find((c) => c.id === code.id));
      expect(picked).toMatchObject({ kind: "refused" });
      expect((await store.findCode(code.id))?.status).toBe("pending");
      // That try was counted all the same: it compared, whatever it found.
      expect((await store.getChallenge(k2))?.attempts).toBe(1);
    });

    test("a live challenge whose codes are all gone: the try is counted, compares nothing, and is a mismatch", async () => {
      const k = key();
      const { code } = await sendAt(store, k, T0);
      await store.updateDelivery(code.id, { status: "failed", providerErrorCode: "21610" }, T0 + 1);
      let compared: LiveCode[] | null = null;
      const tried = await store.tryVerify(k, T0 + 2, verifyRule, (codes) => {
        compared = codes;
        return undefined;
      });
      expect(tried).toEqual({ kind: "mismatch", attempts: 1, codes: [] });
      expect(compared).toEqual([]);
      expect((await store.getChallenge(k))?.attempts).toBe(1);
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

  describe("what a send and a try take, in the same atomic step", () => {
    const bucketOf = (limit: number, rule = "number") => ({ key: `${rule}:${++counter}`, limit, windowMs: 10 * MINUTE, rule });
    const period = () => `p${++counter}`;

    test("a send takes its buckets and its budget hold with the code, or none of them", async () => {
      const k = key();
      const number = bucketOf(2);
      const hold = { period: period(), micros: 40_000, capMicros: 100_000 };
      const take = { buckets: [number], budget: hold };
      const first = record(k, { createdAt: T0 });
      expect(await store.beginSend(first, T0, rule, take)).toEqual({ kind: "opened", attempts: 0, sendCount: 1 });
      expect(await store.readCounters([number.key], T0)).toEqual([{ count: 1, resetAt: T0 + 10 * MINUTE }]);
      expect(await store.budget(hold.period)).toEqual({ spentMicros: 0, reservedMicros: 40_000 });

      // Refused by the challenge's cooldown: the unit and the hold go back, nothing is stored.
      const early = record(k, { createdAt: T0 + 1 });
      const refused = await store.beginSend(early, T0 + 1, rule, take);
      expect(refused).toMatchObject({ kind: "refused", challenge: { sendCount: 1, lastSentAt: T0 } });
      expect(await store.findCode(early.id)).toBeNull();
      expect(await store.readCounters([number.key], T0 + 1)).toEqual([{ count: 1, resetAt: T0 + 10 * MINUTE }]);
      expect(await store.budget(hold.period)).toEqual({ spentMicros: 0, reservedMicros: 40_000 });

      // Over budget: the unit goes back, nothing is stored.
      const other = key();
      const big = record(other, { createdAt: T0 + 2 });
      const over = await store.beginSend(big, T0 + 2, rule, { buckets: [number], budget: { ...hold, micros: 70_000 } });
      expect(over).toEqual({ kind: "over_budget" });
      expect(await store.findCode(big.id)).toBeNull();
      expect(await store.readCounters([number.key], T0 + 2)).toEqual([{ count: 1, resetAt: T0 + 10 * MINUTE }]);
      expect(await store.getChallenge(other)).toBeNull();
    });

    test("a full bucket refuses the send with its rule and wait, and takes nothing from the others", async () => {
      const open = bucketOf(5, "user");
      const full = bucketOf(1, "ip");
      expect(await store.takeUnits([full], T0)).toEqual({ ok: true });
      const k = key();
      const code = record(k, { createdAt: T0 + 1000 });
      const hold = { period: period(), micros: 10, capMicros: 100 };
      expect(await store.beginSend(code, T0 + 1000, rule, { buckets: [open, full], budget: hold })).toEqual({
        kind: "limited",
        rule: "ip",
        retryAfterMs: 10 * MINUTE - 1000,
      });
      expect(await store.findCode(code.id)).toBeNull();
      expect(await store.getChallenge(k)).toBeNull();
      expect(await store.readCounters([open.key], T0 + 1000)).toEqual([{ count: 0, resetAt: T0 + 1000 }]);
      expect(await store.budget(hold.period)).toEqual({ spentMicros: 0, reservedMicros: 0 });
    });

    test("a full bucket after others in key order: what the same take did to those before it is undone", async () => {
      // In key order: challenge:… (a row that exists), global:… (a new row), ip:… (full), user:… (after it).
      const existing = bucketOf(5, "challenge");
      const fresh = bucketOf(5, "global");
      const full = bucketOf(1, "ip");
      const after = bucketOf(5, "user");
      expect(await store.takeUnits([existing, full], T0)).toEqual({ ok: true });
      expect(await store.takeUnits([after, full, fresh, existing], T0 + 1000)).toEqual({
        ok: false,
        rule: "ip",
        retryAfterMs: 10 * MINUTE - 1000,
      });
      expect(await store.readCounters([existing.key, fresh.key, full.key, after.key], T0 + 1000)).toEqual([
        { count: 1, resetAt: T0 + 10 * MINUTE },
        { count: 0, resetAt: T0 + 1000 },
        { count: 1, resetAt: T0 + 10 * MINUTE },
        { count: 0, resetAt: T0 + 1000 },
      ]);
      // Once the full bucket's window ends, the same take takes from all four.
      expect(await store.takeUnits([after, full, fresh, existing], T0 + 10 * MINUTE)).toEqual({ ok: true });
      expect(await store.readCounters([existing.key, full.key], T0 + 10 * MINUTE)).toEqual([
        { count: 1, resetAt: T0 + 20 * MINUTE },
        { count: 1, resetAt: T0 + 20 * MINUTE },
      ]);
    });

    test("of 20 parallel sends to 20 challenges through a bucket of 5, exactly 5 open", async () => {
      const shared = bucketOf(5, "global");
      const results = await Promise.all(
        Array.from({ length: 20 }, () => store.beginSend(record(key(), { createdAt: T0 }), T0, rule, { buckets: [shared] })),
      );
      expect(results.filter((r) => r.kind === "opened")).toHaveLength(5);
      expect(results.filter((r) => r.kind === "limited")).toHaveLength(15);
      expect(await store.readCounters([shared.key], T0)).toEqual([{ count: 5, resetAt: T0 + 10 * MINUTE }]);
    });

    test("of 10 parallel sends to one challenge and 10 to others through one bucket, each refused send gives its unit back", async () => {
      const shared = bucketOf(100, "global");
      const busy = key();
      const sends = [...Array.from({ length: 10 }, () => busy), ...Array.from({ length: 10 }, () => key())].map((k) =>
        record(k, { createdAt: T0 }),
      );
      const results = await Promise.all(sends.map((code) => store.beginSend(code, T0, rule, { buckets: [shared] })));
      expect(results.slice(0, 10).filter((r) => r.kind === "opened")).toHaveLength(1);
      expect(results.slice(0, 10).filter((r) => r.kind === "refused")).toHaveLength(9);
      expect(results.slice(10).every((r) => r.kind === "opened")).toBe(true);
      expect(await store.readCounters([shared.key], T0)).toEqual([{ count: 11, resetAt: T0 + 10 * MINUTE }]);
      const stored = await Promise.all(sends.map((code) => store.findCode(code.id)));
      expect(stored.filter((code) => code !== null)).toHaveLength(11);
    });

    test("a try takes its bucket whatever it finds, and counts a verification only when it verifies", async () => {
      const k = key();
      await sendAt(store, k, T0);
      const tries = bucketOf(2, "verify");
      const counted = { keys: [`conv:ok:${++counter}`], windowMs: MINUTE };
      const take = { buckets: [tries], countOnVerified: counted };
      const wrong = await store.tryVerify(k, T0 + 1, verifyRule, () => undefined, take);
      expect(wrong).toMatchObject({ kind: "mismatch", attempts: 1 });
      expect(await store.readCounters(counted.keys, T0 + 1)).toEqual([{ count: 0, resetAt: T0 + 1 }]);
      const right = await store.tryVerify(k, T0 + 2, verifyRule, (codes) => codes[0], take);
      expect(right).toMatchObject({ kind: "verified" });
      expect(await store.readCounters(counted.keys, T0 + 2)).toEqual([{ count: 1, resetAt: T0 + 2 + MINUTE }]);
      expect(await store.tryVerify(k, T0 + 3, verifyRule, (codes) => codes[0], take)).toEqual({
        kind: "limited",
        rule: "verify",
        retryAfterMs: 10 * MINUTE - 2,
      });
      expect(await store.readCounters([tries.key], T0 + 3)).toEqual([{ count: 2, resetAt: T0 + 1 + 10 * MINUTE }]);
    });

    test("of 20 parallel tries (two per challenge) through a bucket of 5, exactly 5 are counted and 15 limited", async () => {
      const keys = Array.from({ length: 10 }, () => key());
      for (const k of keys) await sendAt(store, k, T0);
      const tries = bucketOf(5, "verify");
      const results = await Promise.all(
        [...keys, ...keys].map((k) => store.tryVerify(k, T0 + 1, verifyRule, () => undefined, { buckets: [tries] })),
      );
      expect(results.filter((r) => r.kind === "mismatch")).toHaveLength(5);
      expect(results.filter((r) => r.kind === "limited")).toHaveLength(15);
      expect(await store.readCounters([tries.key], T0 + 1)).toEqual([{ count: 5, resetAt: T0 + 1 + 10 * MINUTE }]);
      const attempts = await Promise.all(keys.map(async (k) => (await store.getChallenge(k))?.attempts ?? 0));
      expect(attempts.reduce((sum, n) => sum + n, 0)).toBe(5);
    });

    test("20 parallel tries (two per challenge) within a bucket's room are each counted once", async () => {
      const keys = Array.from({ length: 10 }, () => key());
      for (const k of keys) await sendAt(store, k, T0);
      const tries = bucketOf(100, "verify");
      const results = await Promise.all(
        [...keys, ...keys].map((k) => store.tryVerify(k, T0 + 1, verifyRule, () => undefined, { buckets: [tries] })),
      );
      expect(results.every((r) => r.kind === "mismatch")).toBe(true);
      expect(await store.readCounters([tries.key], T0 + 1)).toEqual([{ count: 20, resetAt: T0 + 1 + 10 * MINUTE }]);
      for (const k of keys) expect((await store.getChallenge(k))?.attempts).toBe(2);
    });

    test("counts given in one turn add up per key, and a counter whose window has ended starts again", async () => {
      const [a, b] = [`conv:sent:${++counter}`, `conv:sent:${++counter}`];
      // One turn of the event loop: the group commit may fold them (PostgreSQL and SQLite both do).
      await Promise.all([store.addCounts([a, b], MINUTE, T0), store.addCounts([a], MINUTE, T0), store.addCounts([a, b], MINUTE, T0 + 1)]);
      expect(await store.readCounters([a, b], T0 + 2)).toEqual([
        { count: 3, resetAt: T0 + MINUTE },
        { count: 2, resetAt: T0 + MINUTE },
      ]);
      await store.addCounts([a], MINUTE, T0 + MINUTE);
      expect(await store.readCounters([a, b], T0 + MINUTE)).toEqual([
        { count: 1, resetAt: T0 + 2 * MINUTE },
        { count: 0, resetAt: T0 + MINUTE },
      ]);
    });
  });

  describe("MACs", () => {
    test("a code keeps its MAC and key id while it can verify, and loses the MAC when it cannot", async () => {
      const k = key();
      const { code } = await sendAt(store, k, T0);
      expect(await store.findCode(code.id)).toMatchObject({ codeHash: HASH, keyId: "k1" });
      const { code: later } = await sendAt(store, k, T0 + 30_000, { codeHash: "cd".repeat(32) });
      expect(await tryCode(store, k, T0 + 31_000, "cd".repeat(32))).toMatchObject({ kind: "verified" });
      // The one verified and the one its challenge retired: neither can verify any more.
      expect(await store.findCode(later.id)).toMatchObject({ status: "verified", codeHash: null });
      expect(await store.findCode(code.id)).toMatchObject({ status: "superseded", codeHash: null });
    });

    test("clearExpiredMacs clears only the expired codes that still hold one", async () => {
      const k = key();
      const { code: old } = await sendAt(store, k, T0, { expiresAt: T0 + MINUTE });
      const { code: live } = await sendAt(store, key(), T0, { expiresAt: T0 + 20 * MINUTE });
      expect(await store.clearExpiredMacs(T0 + 2 * MINUTE, { batch: 1 })).toBeGreaterThanOrEqual(1);
      expect(await store.findCode(old.id)).toMatchObject({ status: "pending", codeHash: null });
      expect(await store.findCode(live.id)).toMatchObject({ codeHash: HASH });
    });
  });

  describe("idempotency keys", () => {
    const request = (fingerprint = "f1") => ({ scope: `send|sub:usr_${++counter}`, key: `key-${counter}`, fingerprint });
    const times = { ttlMs: 24 * 60 * MINUTE, leaseMs: MINUTE };
    const answer = { status: 200, contentType: "application/json; charset=utf-8", body: '{"success":true}' };

    test("claim, then in flight for the same body and refused for another, then the answer for every retry", async () => {
      const r = request();
      expect(await store.claimIdempotencyKey(r, T0, times)).toEqual({ kind: "claimed" });
      expect(await store.claimIdempotencyKey(r, T0 + 1, times)).toEqual({ kind: "in_flight" });
      expect(await store.claimIdempotencyKey({ ...r, fingerprint: "f2" }, T0 + 1, times)).toEqual({ kind: "mismatch" });
      await store.completeIdempotencyKey(r, answer);
      expect(await store.claimIdempotencyKey(r, T0 + 2, times)).toEqual({ kind: "done", answer });
      expect(await store.claimIdempotencyKey({ ...r, fingerprint: "f2" }, T0 + 2, times)).toEqual({ kind: "mismatch" });
      // Another caller's key of the same name is its own.
      expect(await store.claimIdempotencyKey({ ...r, scope: `${r.scope}x` }, T0 + 2, times)).toEqual({ kind: "claimed" });
      // After its 24 hours the key is new again.
      expect(await store.claimIdempotencyKey({ ...r, fingerprint: "f2" }, T0 + times.ttlMs, times)).toEqual({ kind: "claimed" });
    });

    test("a released key, or one whose request died past its lease, can be claimed again", async () => {
      const r = request();
      expect(await store.claimIdempotencyKey(r, T0, times)).toEqual({ kind: "claimed" });
      await store.releaseIdempotencyKey(r);
      expect(await store.claimIdempotencyKey(r, T0 + 1, times)).toEqual({ kind: "claimed" });
      expect(await store.claimIdempotencyKey(r, T0 + 1 + MINUTE - 1, times)).toEqual({ kind: "in_flight" });
      expect(await store.claimIdempotencyKey(r, T0 + 1 + MINUTE, times)).toEqual({ kind: "claimed" });
    });

    test("of 20 parallel claims of one key exactly one wins; expired keys are dropped", async () => {
      const r = request();
      const claims = await Promise.all(Array.from({ length: 20 }, () => store.claimIdempotencyKey(r, T0, times)));
      expect(claims.filter((c) => c.kind === "claimed")).toHaveLength(1);
      expect(claims.filter((c) => c.kind === "in_flight")).toHaveLength(19);
      expect(await store.dropExpiredIdempotencyKeys(T0 + times.ttlMs - 1)).toBe(0);
      expect(await store.dropExpiredIdempotencyKeys(T0 + 10 * times.ttlMs, { batch: 1 })).toBeGreaterThanOrEqual(1);
      expect(await store.claimIdempotencyKey(r, T0 + 1, times)).toEqual({ kind: "claimed" });
    });
  });

  describe("lockChallenge", () => {
    test("kills live codes, refuses tries and sends until the lock ends, then starts afresh", async () => {
      const k = key();
      const { code } = await sendAt(store, k, T0);
      await store.lockChallenge(k, T0 + 10 * MINUTE, T0);
      expect((await store.findCode(code.id))?.status).toBe("locked");
      expect(await tryCode(store, k, T0 + 1)).toMatchObject({ kind: "refused" });
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
