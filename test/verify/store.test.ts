import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SqlStore } from "../../src/store/sql-store.js";
import type { StartInput } from "../../src/store/verify-store.js";
import { newSid } from "../../src/verify/sids.js";
import { DIALECTS, type TestDatabase } from "../support/databases.js";

const T0 = Date.UTC(2026, 10, 26, 12);
const TTL = 10 * 60_000;

/** The /v2 API's store on both databases: a verification's life as Twilio defines it, step by step. */
describe.each(DIALECTS)("VerifyStore on $name", ({ make }) => {
  let db: TestDatabase | null = null;
  let store: SqlStore;
  const serviceSid = newSid("VA");

  beforeAll(async () => {
    db = await make();
    if (db === null) return;
    store = await db.createStore();
    await store.verify.createService({ sid: serviceSid, friendlyName: "Store", codeLength: 6, settings: {}, createdAt: T0, updatedAt: T0 });
  });
  afterAll(async () => {
    if (db === null) return;
    await store.close();
    await db.drop();
  });

  const input = (to: string, now: number): StartInput => ({
    serviceSid,
    to,
    channel: "sms",
    now,
    fresh: { sid: newSid("VE"), nonce: "n", keyId: "default", codeLength: 6, locale: "en", expiresAt: now + TTL },
    maxSends: 5,
    attempt: { sid: newSid("VL"), channel: "sms", country: "CR", priceMicros: 7500 },
    take: [],
  });
  /** A start that takes no units: never `limited`. */
  const start = async (given: StartInput) => {
    const started = await store.verify.startVerification(given);
    if (started.kind === "limited") throw new Error("a start without units was limited");
    return started;
  };

  it("a start while one is pending is a send on it; after its ten minutes, a new verification and the old one expired", async () => {
    if (db === null) return;
    const first = await start(input("+50688880001", T0));
    expect(first).toMatchObject({ kind: "started", verification: { sendCount: 1, status: "pending", expiresAt: T0 + TTL } });
    const again = await start(input("+50688880001", T0 + 1000));
    expect(again).toMatchObject({ kind: "started", verification: { sid: first.verification.sid, sendCount: 2, expiresAt: T0 + TTL } });
    expect(await store.verify.sendAttempts(again.verification)).toHaveLength(2);
    const later = await start(input("+50688880001", T0 + TTL));
    expect(later.verification.sid).not.toBe(first.verification.sid);
    expect(later.verification.sendCount).toBe(1);
    expect(await store.verify.getVerification(serviceSid, first.verification.sid)).toMatchObject({ status: "expired" });
  });

  it("five sends, then max_sends with nothing stored", async () => {
    if (db === null) return;
    for (let i = 1; i <= 5; i++) expect((await start(input("+50688880002", T0 + i))).kind).toBe("started");
    const sixth = await start(input("+50688880002", T0 + 6));
    expect(sixth).toMatchObject({ kind: "max_sends", verification: { sendCount: 5 } });
    expect(await store.verify.sendAttempts(sixth.verification)).toHaveLength(5);
  });

  it("checks: counted first, five at most, the sixth ends it; a match approves once; an expired one is not found", async () => {
    if (db === null) return;
    const { verification } = await start(input("+50688880003", T0));
    for (let i = 1; i <= 5; i++) {
      expect(await store.verify.checkVerification(serviceSid, { to: "+50688880003" }, T0 + i, 5, () => false)).toMatchObject({
        kind: "mismatch",
        verification: { checkCount: i },
      });
    }
    expect(await store.verify.checkVerification(serviceSid, { sid: verification.sid }, T0 + 6, 5, () => true)).toMatchObject({
      kind: "max_checks",
    });
    expect(await store.verify.checkVerification(serviceSid, { sid: verification.sid }, T0 + 7, 5, () => true)).toMatchObject({
      kind: "not_found",
      known: { status: "max_attempts_reached" },
    });

    const next = await start(input("+50688880003", T0 + 10));
    expect(next.verification.sid).not.toBe(verification.sid);
    expect(await store.verify.checkVerification(serviceSid, { to: "+50688880003" }, T0 + 11, 5, () => true)).toMatchObject({
      kind: "approved",
      verification: { status: "approved", checkCount: 1 },
    });
    expect(await store.verify.checkVerification(serviceSid, { to: "+50688880003" }, T0 + 12, 5, () => true)).toMatchObject({
      kind: "not_found",
    });
    const verified = await db.sql().selectFrom("otp_codes").select("status").where("user_id", "=", next.verification.sid).execute();
    expect(verified).toEqual([{ status: "verified" }]);

    const stale = await start(input("+50688880004", T0));
    expect(await store.verify.checkVerification(serviceSid, { to: "+50688880004" }, T0 + TTL, 5, () => true)).toMatchObject({
      kind: "not_found",
      known: { status: "expired" },
    });
    expect(await store.verify.endVerification(serviceSid, stale.verification.sid, "canceled", T0 + TTL + 1)).toBeNull();
  });

  it("atomic under races: 20 parallel starts end on one verification (5 sends), 20 parallel right checks approve once", async () => {
    if (db === null) return;
    // A second store on the same database: on PostgreSQL its own pool, so the steps really run side by side.
    const other = await db.createStore();
    try {
      const stores = [store, other];
      const starts = await Promise.all(
        Array.from({ length: 20 }, (_, i) => stores[i % 2]?.verify.startVerification(input("+50688880010", T0 + i))),
      );
      expect(new Set(starts.map((s) => (s !== undefined && "verification" in s ? s.verification.sid : null))).size).toBe(1);
      expect(starts.filter((s) => s?.kind === "started")).toHaveLength(5);
      const checks = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          stores[i % 2]?.verify.checkVerification(serviceSid, { to: "+50688880010" }, T0 + 100, 5, () => true),
        ),
      );
      expect(checks.filter((c) => c?.kind === "approved")).toHaveLength(1);
      expect(checks.every((c) => c?.kind === "approved" || c?.kind === "not_found" || c?.kind === "max_checks")).toBe(true);
    } finally {
      await other.close();
    }
  });

  it("one turn's starts and checks (one statement each on PostgreSQL): every request answered with its own address's verification", async () => {
    if (db === null) return;
    const to = (i: number) => `+5068888${String(100 + i).padStart(4, "0")}`;
    // Three starts for each of ten addresses at once: the second and third of an address follow its first.
    const starts = await Promise.all(Array.from({ length: 30 }, (_, i) => start(input(to(i % 10), T0 + i))));
    const sidOf = (a: number) => starts.find((s) => s.verification.to === to(a))?.verification.sid ?? "";
    for (let a = 0; a < 10; a++) {
      const mine = starts.filter((s) => s.verification.to === to(a));
      expect(mine).toHaveLength(3);
      expect(new Set(mine.map((s) => s.verification.sid)).size).toBe(1);
      expect(mine.map((s) => s.verification.sendCount).sort()).toEqual([1, 2, 3]);
      const [first] = mine;
      if (first === undefined) throw new Error(`no start answered for ${to(a)}`);
      expect(await store.verify.sendAttempts(first.verification)).toHaveLength(3);
    }
    // One check of each address at once, by address or by sid, each taking a unit (PostgreSQL: the turn's
    // units and reads in one statement): the even ones match, the odd ones do not.
    const roomy = { key: `verify-turn:${newSid("BL")}`, limit: 100, windowMs: TTL, rule: "verify" };
    const checks = await Promise.all(
      Array.from({ length: 10 }, (_, a) =>
        store.verify.checkVerification(serviceSid, a % 3 === 0 ? { sid: sidOf(a) } : { to: to(a) }, T0 + 100, 5, () => a % 2 === 0, [
          roomy,
        ]),
      ),
    );
    expect((await store.readCounters([roomy.key], T0 + 100))[0]?.count).toBe(10);
    for (let a = 0; a < 10; a++) {
      const sid = sidOf(a);
      expect(checks[a]).toMatchObject({ kind: a % 2 === 0 ? "approved" : "mismatch", verification: { sid, to: to(a), checkCount: 1 } });
      const attempts = await db
        .sql()
        .selectFrom("otp_codes")
        .select(["status"])
        .where("user_id", "=", sid)
        .orderBy("created_at")
        .orderBy("id")
        .execute();
      // An approval marks the newest send attempt, the code that verified; a mismatch marks none.
      expect(attempts.map((row) => row.status)).toEqual(
        a % 2 === 0 ? ["pending", "pending", "verified"] : ["pending", "pending", "pending"],
      );
    }
  });

  it("a start takes its units with the send: all or nothing, back when no send opens, exact under a race", async () => {
    if (db === null) return;
    const bucket = (limit: number) => ({ key: `verify-test:${newSid("BL")}`, limit, windowMs: TTL, rule: "global" });
    const count = async (key: string) => (await store.readCounters([key], T0))[0]?.count;

    // A full bucket: limited, nothing taken from the other, nothing stored.
    const full = bucket(1);
    const room = bucket(10);
    await store.takeUnits([full], T0);
    const refused = await store.verify.startVerification({ ...input("+50688880020", T0), take: [room, full] });
    expect(refused).toEqual({ kind: "limited", rule: "global", retryAfterMs: TTL });
    expect(await count(room.key)).toBe(0);
    expect(await store.verify.checkVerification(serviceSid, { to: "+50688880020" }, T0, 5, () => true)).toEqual({
      kind: "not_found",
      known: null,
    });

    // Five sends take five units; the sixth (max_sends) gives its unit back.
    const units = bucket(100);
    for (let i = 0; i < 6; i++) await store.verify.startVerification({ ...input("+50688880021", T0 + i), take: [units] });
    expect(await count(units.key)).toBe(5);

    // Twenty starts for twenty numbers at once through a bucket of five: exactly five open.
    const five = bucket(5);
    const raced = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.verify.startVerification({ ...input(`+506888801${String(i).padStart(2, "0")}`, T0), take: [five] }),
      ),
    );
    expect(raced.filter((r) => r.kind === "started")).toHaveLength(5);
    expect(raced.filter((r) => r.kind === "limited")).toHaveLength(15);
    expect(await count(five.key)).toBe(5);
  });

  it("a check takes its try limit's units first, whatever it finds, and a full bucket counts nothing", async () => {
    if (db === null) return;
    const tries = { key: `verify-try:${newSid("BL")}`, limit: 2, windowMs: TTL, rule: "verify" };
    const { verification } = await start(input("+50688880030", T0));
    const check = (code: boolean) => store.verify.checkVerification(serviceSid, { to: "+50688880030" }, T0 + 1, 5, () => code, [tries]);
    expect(await check(false)).toMatchObject({ kind: "mismatch", verification: { checkCount: 1 } });
    // Nothing pending for this number: the unit is taken all the same, as a native try's is.
    expect(await store.verify.checkVerification(serviceSid, { to: "+50688880031" }, T0 + 1, 5, () => true, [tries])).toEqual({
      kind: "not_found",
      known: null,
    });
    expect(await check(true)).toEqual({ kind: "limited", rule: "verify", retryAfterMs: TTL });
    expect((await store.readCounters([tries.key], T0 + 1))[0]?.count).toBe(2);
    expect(await store.verify.getVerification(serviceSid, verification.sid)).toMatchObject({ status: "pending", checkCount: 1 });

    // Twenty checks of twenty verifications at once through a bucket of five: exactly five counted.
    const five = { key: `verify-try:${newSid("BL")}`, limit: 5, windowMs: TTL, rule: "verify" };
    const number = (i: number) => `+506888802${String(i).padStart(2, "0")}`;
    for (let i = 0; i < 20; i++) await start(input(number(i), T0));
    const raced = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.verify.checkVerification(serviceSid, { to: number(i) }, T0 + 2, 5, () => false, [five])),
    );
    expect(raced.filter((r) => r.kind === "mismatch")).toHaveLength(5);
    expect(raced.filter((r) => r.kind === "limited")).toHaveLength(15);
    expect((await store.readCounters([five.key], T0 + 2))[0]?.count).toBe(5);
  });

  it("one turn's checks under a take: found and not found, an address twice, a verification by address and by sid", async () => {
    if (db === null) return;
    const tries = { key: `verify-mixed:${newSid("BL")}`, limit: 100, windowMs: TTL, rule: "verify" };
    const a = (await start(input("+50688880300", T0))).verification;
    const b = (await start(input("+50688880301", T0))).verification;
    const check = (target: { to: string } | { sid: string }, service = serviceSid) =>
      store.verify.checkVerification(service, target, T0 + 3, 5, () => false, [tries]);
    const checked = await Promise.all([
      check({ to: "+50688880399" }),
      check({ to: a.to }),
      check({ sid: newSid("VE") }),
      check({ to: a.to }),
      check({ sid: b.sid }, newSid("VA")),
      check({ sid: b.sid }),
      check({ to: b.to }),
    ]);
    // Every check took its unit, whatever it found.
    expect((await store.readCounters([tries.key], T0 + 3))[0]?.count).toBe(7);
    expect(checked.map((c) => c.kind)).toEqual(["not_found", "mismatch", "not_found", "mismatch", "not_found", "mismatch", "mismatch"]);
    // Two checks of one verification in one turn: both counted, the second after the first.
    const counts = checked.flatMap((c) => (c.kind === "mismatch" ? [[c.verification.sid, c.verification.checkCount]] : []));
    expect(counts).toEqual([
      [a.sid, 1],
      [a.sid, 2],
      [b.sid, 1],
      [b.sid, 2],
    ]);
    expect(await store.verify.getVerification(serviceSid, a.sid)).toMatchObject({ status: "pending", checkCount: 2 });
    expect(await store.verify.getVerification(serviceSid, b.sid)).toMatchObject({ status: "pending", checkCount: 2 });
  });

  it("a check's take sweeps expired rate-limit windows, as every take of the store does", async () => {
    if (db === null) return;
    const later = T0 + 365 * 86_400_000;
    const stale = { key: `verify-stale:${newSid("BL")}`, limit: 5, windowMs: 1000, rule: "verify" };
    await store.takeUnits([stale], later);
    const tries = { key: `verify-sweep:${newSid("BL")}`, limit: 5, windowMs: TTL, rule: "verify" };
    // Two minutes on, the stale window is over: the check's take deletes it (at most once a minute).
    await store.verify.checkVerification(serviceSid, { to: "+50688880398" }, later + 120_000, 5, () => true, [tries]);
    const left = await db.sql().selectFrom("rate_limits").select("key").where("key", "in", [stale.key, tries.key]).execute();
    expect(left.map((row) => row.key)).toEqual([tries.key]);
  });

  it("rate limits: a duplicate name or bucket interval is refused; deleting a limit deletes its buckets", async () => {
    if (db === null) return;
    const limit = { sid: newSid("RK"), serviceSid, uniqueName: "ip", description: null, createdAt: T0, updatedAt: T0 };
    expect(await store.verify.createRateLimit(limit)).toBe("created");
    expect(await store.verify.createRateLimit({ ...limit, sid: newSid("RK") })).toBe("duplicate");
    const bucket = { sid: newSid("BL"), rateLimitSid: limit.sid, serviceSid, max: 3, interval: 60, createdAt: T0, updatedAt: T0 };
    expect(await store.verify.createBucket(bucket)).toBe("created");
    expect(await store.verify.createBucket({ ...bucket, sid: newSid("BL") })).toBe("duplicate");
    const wider = { ...bucket, sid: newSid("BL"), interval: 3600 };
    await store.verify.createBucket(wider);
    expect(await store.verify.updateBucket(limit.sid, wider.sid, { interval: 60 }, T0 + 1)).toBe("duplicate");
    expect(await store.verify.bucketsOf(serviceSid, ["ip"])).toHaveLength(2);
    expect(await store.verify.deleteRateLimit(serviceSid, limit.sid)).toBe(true);
    expect(await store.verify.listBuckets(limit.sid, { offset: 0, size: 10 })).toEqual({ items: [], more: false });
  });

  it("retention deletes the verifications created before its cut-off", async () => {
    if (db === null) return;
    const sql = db.sql();
    const count = async () => (await sql.selectFrom("verifications").select("created_at").execute()).map((row) => Number(row.created_at));
    await start(input("+50688880009", T0 + 2 * TTL));
    const old = (await count()).filter((created) => created < T0 + TTL).length;
    expect(old).toBeGreaterThan(0);
    expect(await store.verify.purgeVerifications(T0 + TTL, 1000)).toBe(old);
    expect((await count()).every((created) => created >= T0 + TTL)).toBe(true);
  });
});
