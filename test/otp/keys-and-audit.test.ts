import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { ConfigError } from "../../src/errors.js";
import { loggerOptions } from "../../src/logger.js";
import { createVericode, type Vericode } from "../../src/vericode.js";
import { DIALECTS, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, TEST_SECRETS } from "../support/service.js";

const K1 = `k1:${"1".repeat(64)}`;
const K2 = `k2:${"2".repeat(64)}`;
const MINUTE = 60_000;
let n = 0;

/** A service on `db` with these codes' keys, whose log lines are kept for the test to read. */
async function service(db: TestDatabase, otpSecrets: string, clock: ManualClock, channel: RecordingChannel) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const vericode = await createVericode({
    env: {
      JWT_SECRET: TEST_SECRETS.JWT_SECRET,
      OTP_SECRETS: otpSecrets,
      DATABASE_URL: db.url,
      RATE_LIMIT_VERIFY: "off",
      CONVERSION_BREAKER_MIN_SENDS: "0",
    },
    envFile: false,
    clock,
    channel,
    logger: pino(loggerOptions("info"), sink),
    ...(db.schema === undefined ? {} : { databaseSchema: db.schema }),
  });
  return { vericode, audit: () => lines.filter((line) => line.event === "otp.verify") };
}

describe("OTP_SECRETS", () => {
  const load = (env: Record<string, string>) =>
    createVericode({ env: { JWT_SECRET: TEST_SECRETS.JWT_SECRET, DATABASE_URL: "sqlite::memory:", ...env }, envFile: false });

  it("refuses a key under 32 bytes, one id twice, a pair without an id, and both forms at once", async () => {
    for (const [env, problem] of [
      [{ OTP_SECRETS: `k1:${"1".repeat(31)}` }, "the key k1 is too short"],
      [{ OTP_SECRETS: `${K1},k1:${"3".repeat(64)}` }, "names the key k1 twice"],
      [{ OTP_SECRETS: "1".repeat(64) }, "takes id:secret pairs"],
      [{ OTP_SECRETS: K1, OTP_SECRET: "o".repeat(32) }, "not both"],
    ] as const) {
      const error = await load(env).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toContain(problem);
    }
  });
});

for (const dialect of DIALECTS) {
  describe(`keys, cleared MACs and the verify audit on ${dialect.name}`, () => {
    let db: TestDatabase | null;
    const clock = new ManualClock(Date.UTC(2026, 10, 26, 12));
    const channel = new RecordingChannel();
    let open: { vericode: Vericode; audit: () => Record<string, unknown>[] }[] = [];
    const start = async (secrets: string) => {
      const started = await service(db as TestDatabase, secrets, clock, channel);
      open.push(started);
      return started;
    };

    beforeAll(async () => {
      db = await dialect.make();
    });
    afterAll(async () => {
      for (const { vericode } of open) await vericode.close();
      open = [];
      await db?.drop();
    });

    it("a code made under the old key verifies after the rotation; one whose key is gone fails closed", async (context) => {
      if (db === null) return context.skip();
      const phone = `+5068888${String(++n).padStart(4, "0")}`;
      const other = `+5068889${String(n).padStart(4, "0")}`;
      const before = await start(K1);
      const sent = await before.vericode.otp.sendOtp(phone, "usr_rot", "login");
      const lost = await before.vericode.otp.sendOtp(other, "usr_rot", "login");
      if (!sent.ok || !lost.ok) throw new Error("not sent");
      expect((await before.vericode.store.findCode(sent.id))?.keyId).toBe("k1");

      // The new key signs; the old one still verifies.
      const rotated = await start(`${K2},${K1}`);
      const fresh = await rotated.vericode.otp.sendOtp(`+5068887${String(n).padStart(4, "0")}`, "usr_rot", "login");
      if (!fresh.ok) throw new Error("not sent");
      expect((await rotated.vericode.store.findCode(fresh.id))?.keyId).toBe("k2");
      expect(await rotated.vericode.otp.verifyOtp(phone, channel.lastCodeTo(phone), "usr_rot", "login")).toMatchObject({ ok: true });

      // The old key removed: its codes never verify, even with the right digits.
      const removed = await start(K2);
      expect(await removed.vericode.otp.verifyOtp(other, channel.lastCodeTo(other), "usr_rot", "login")).toMatchObject({
        ok: false,
        code: "otp_invalid",
      });
    });

    it("clears the MAC when a code is consumed, superseded, locked, failed or expired; the report keeps its figures", async (context) => {
      if (db === null) return context.skip();
      const { vericode } = await start(K1);
      const { otp, store, analytics } = vericode;
      const at = (phone: string) => `+5068${phone}${String(++n).padStart(3, "0")}`;
      const sendTo = async (phone: string, user: string) => {
        const sent = await otp.sendOtp(phone, user, "login");
        if (!sent.ok) throw new Error(JSON.stringify(sent));
        return sent.id;
      };
      const mac = async (id: string) => (await store.findCode(id))?.codeHash ?? null;

      const consumedPhone = at("8881");
      const consumed = await sendTo(consumedPhone, "usr_mac");
      expect(await mac(consumed)).toMatch(/^[0-9a-f]{64}$/);
      await otp.verifyOtp(consumedPhone, channel.lastCodeTo(consumedPhone), "usr_mac", "login");
      expect(await mac(consumed)).toBeNull();

      // A fourth send of one challenge supersedes its oldest code (three stay live).
      const supersededPhone = at("8882");
      const sends: string[] = [];
      for (let i = 0; i < 4; i++) {
        sends.push(await sendTo(supersededPhone, "usr_mac"));
        clock.advance(301);
      }
      expect((await store.findCode(sends[0] as string))?.status).toBe("superseded");
      expect(await mac(sends[0] as string)).toBeNull();
      for (const live of sends.slice(1)) expect(await mac(live)).toMatch(/^[0-9a-f]{64}$/);
      const first = sends[1] as string;

      const lockedPhone = at("8883");
      const locked = await sendTo(lockedPhone, "usr_mac");
      for (let i = 0; i < 5; i++)
        await otp.verifyOtp(lockedPhone, "000000" === channel.lastCodeTo(lockedPhone) ? "000001" : "000000", "usr_mac", "login");
      expect((await store.findCode(locked))?.status).toBe("locked");
      expect(await mac(locked)).toBeNull();

      const failedPhone = at("8884");
      channel.failures.push({ ok: false, kind: "rejected", providerCode: "21610", message: "opted out" });
      const failedSend = await otp.sendOtp(failedPhone, "usr_mac", "login");
      expect(failedSend.ok).toBe(false);
      const failedId = failedSend.ok ? "" : (failedSend.id as string);
      expect(await mac(failedId)).toBeNull();

      clock.advance(11 * 60);
      const now = clock.now().getTime();
      const range = { from: now - 2 * 60 * MINUTE, to: now + 60 * MINUTE, groupBy: "day" as const };
      const before = await analytics.summary(range, now);
      expect(await store.clearExpiredMacs(now)).toBeGreaterThanOrEqual(1);
      expect(await mac(first)).toBeNull();
      expect((await analytics.summary(range, now)).totals).toEqual(before.totals);
    });

    it("audits every verify outcome with the record's id and channel where there is one", async (context) => {
      if (db === null) return context.skip();
      const { vericode, audit } = await start(K1);
      const { otp } = vericode;
      const phone = `+5068886${String(++n).padStart(4, "0")}`;
      const sent = await otp.sendOtp(phone, "usr_audit", "login");
      if (!sent.ok) throw new Error("not sent");
      const code = channel.lastCodeTo(phone);
      await otp.verifyOtp(`+5068885${String(n).padStart(4, "0")}`, code, "usr_audit", "login");
      await otp.verifyOtp(phone, code === "000000" ? "000001" : "000000", "usr_audit", "login");
      await otp.verifyOtp(phone, code, "usr_audit", "login");
      await otp.verifyOtp(phone, code, "usr_audit", "login");
      // Five wrong tries lock the challenge; a sixth is refused as locked.
      const locking = `+5068883${String(n).padStart(4, "0")}`;
      const lockedSend = await otp.sendOtp(locking, "usr_audit", "login");
      if (!lockedSend.ok) throw new Error("not sent");
      const wrong = channel.lastCodeTo(locking) === "000000" ? "000001" : "000000";
      for (let i = 0; i < 5; i++) await otp.verifyOtp(locking, wrong, "usr_audit", "login");
      const expiring = `+5068884${String(n).padStart(4, "0")}`;
      await otp.sendOtp(expiring, "usr_audit", "login");
      clock.advance(11 * 60);
      await otp.verifyOtp(expiring, channel.lastCodeTo(expiring), "usr_audit", "login");
      const lines = audit().map(({ outcome, id, channel: via, purpose, to }) => ({ outcome, id, channel: via, purpose, to }));
      expect(lines).toEqual([
        { outcome: "not_found", id: undefined, channel: undefined, purpose: "login", to: expect.stringMatching(/^\*+\d{4}$/) },
        { outcome: "invalid", id: sent.id, channel: "sms", purpose: "login", to: expect.stringMatching(/^\*+\d{4}$/) },
        { outcome: "verified", id: sent.id, channel: "sms", purpose: "login", to: expect.stringMatching(/^\*+\d{4}$/) },
        { outcome: "replay", id: sent.id, channel: "sms", purpose: "login", to: expect.stringMatching(/^\*+\d{4}$/) },
        ...Array.from({ length: 4 }, () => ({
          outcome: "invalid",
          id: lockedSend.id,
          channel: "sms",
          purpose: "login",
          to: expect.any(String),
        })),
        { outcome: "locked", id: lockedSend.id, channel: "sms", purpose: "login", to: expect.any(String) },
        {
          outcome: "expired",
          id: expect.stringMatching(/^otp_/),
          channel: "sms",
          purpose: "login",
          to: expect.stringMatching(/^\*+\d{4}$/),
        },
      ]);
    });
  });
}
