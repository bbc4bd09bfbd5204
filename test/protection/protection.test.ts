import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { VericodeError } from "../../src/errors.js";
import { DIALECTS, sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { redisAvailable, redisNamespace } from "../support/redis.js";
import { NO_LIMITS, RecordingChannel, startService, type TestService } from "../support/service.js";

/** Every protection rule on SQL (SQLite, PostgreSQL) and on Redis: each test builds its own service. */
const BACKENDS = [
  ...DIALECTS.map((dialect) => ({ name: `${dialect.name} + sql limiter`, make: dialect.make, redis: false })),
  { name: "sqlite + redis limiter", make: async (): Promise<TestDatabase | null> => sqliteDatabase(), redis: true },
];

const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);
let n = 0;
const user = () => `usr_p${++n}`;

for (const backend of BACKENDS) {
  describe(`protection on ${backend.name}`, () => {
    let db: TestDatabase | null = null;
    let namespace: ReturnType<typeof redisNamespace> | null = null;
    let service: TestService | null = null;
    let channel: RecordingChannel;
    let clock: ManualClock;
    let skip = false;

    beforeEach(async (context) => {
      skip = backend.redis && !(await redisAvailable());
      db = skip ? null : await backend.make();
      if (db === null) {
        context.skip();
        return;
      }
      channel = new RecordingChannel();
      clock = new ManualClock(T0);
    });
    afterEach(async () => {
      await service?.close();
      service = null;
      await db?.drop();
      await namespace?.drop();
      namespace = null;
    });

    /** A service with protection as the environment says (everything else off unless given). */
    async function start(env: Record<string, string>): Promise<TestService> {
      if (db === null) throw new Error("no database");
      namespace = backend.redis ? redisNamespace() : null;
      service = await startService(db, {
        clock,
        channel,
        env: { ...NO_LIMITS, ...(backend.redis ? { REDIS_URL: "redis://127.0.0.1:6379" } : {}), ...env },
        ...(namespace === null ? {} : { redisPrefix: namespace.prefix }),
      });
      return service;
    }
    const otp = () => (service as TestService).vericode.otp;
    const refusals = async () => {
      return (
        await sql<{
          rule: string;
          code: string;
          phone_prefix: string;
        }>`select rule, code, phone_prefix from otp_refusals order by rule`.execute((db as TestDatabase).sql())
      ).rows;
    };

    it("per number: the 11th send in an hour is refused across purposes and users, and nothing is sent", async () => {
      if (skip) return;
      await start({ RATE_LIMIT_NUMBER: "10/1h" });
      const phone = "+50688880001";
      for (let i = 0; i < 10; i++) {
        expect(await otp().sendOtp(phone, user(), i % 2 === 0 ? "login" : "registration")).toMatchObject({ ok: true });
      }
      const refused = await otp().sendOtp(phone, user(), "password_reset");
      expect(refused).toMatchObject({ ok: false, code: "rate_limited", rule: "number", retryAfter: 3600 });
      expect(channel.sentTo(phone)).toBe(10);
      clock.advance(3600);
      expect(await otp().sendOtp(phone, user(), "login")).toMatchObject({ ok: true });
      expect(await refusals()).toEqual([{ rule: "number", code: "rate_limited", phone_prefix: "+5068888" }]);
    });

    it("per challenge: at most N sends per window even when the cooldown allows them", async () => {
      if (skip) return;
      await start({ RATE_LIMIT_CHALLENGE: "3/10m", OTP_RESEND_COOLDOWN_SECONDS: "0" });
      const u = user();
      for (let i = 0; i < 3; i++) expect((await otp().sendOtp("+50688880002", u, "login")).ok).toBe(true);
      expect(await otp().sendOtp("+50688880002", u, "login")).toMatchObject({ code: "rate_limited", rule: "challenge" });
      // Another user on the same number is another challenge.
      expect((await otp().sendOtp("+50688880002", user(), "login")).ok).toBe(true);
    });

    it("the resend cooldown grows: 30 s, 60 s, 120 s… up to its maximum, and starts again once verified", async () => {
      if (skip) return;
      await start({ OTP_RESEND_COOLDOWN_SECONDS: "30", OTP_RESEND_COOLDOWN_MAX_SECONDS: "120" });
      const u = user();
      const phone = "+50688880003";
      const send = () => otp().sendOtp(phone, u, "login");
      const first = await send();
      expect(first.ok && (first.resendAfter.getTime() - T0) / 1000).toBe(30);
      clock.advance(30);
      const second = await send();
      expect(second.ok && (second.resendAfter.getTime() - clock.now().getTime()) / 1000).toBe(60);
      clock.advance(59);
      expect(await send()).toMatchObject({ code: "rate_limited", rule: "cooldown", retryAfter: 1 });
      clock.advance(1);
      expect((await send()).ok).toBe(true);
      clock.advance(119);
      expect(await send()).toMatchObject({ rule: "cooldown", retryAfter: 1 });
      clock.advance(1);
      expect((await send()).ok).toBe(true);
      // Capped at 120 s.
      clock.advance(120);
      expect((await send()).ok).toBe(true);
      expect((await otp().verifyOtp(phone, channel.lastCodeTo(phone), u, "login")).ok).toBe(true);
      clock.advance(30);
      expect((await send()).ok).toBe(true);
    });

    it("per user, per prefix and global caps, each named in the refusal", async () => {
      if (skip) return;
      await start({ RATE_LIMIT_USER: "2/1h", RATE_LIMIT_PREFIX: "3/1h", RATE_LIMIT_GLOBAL: "6/1h" });
      const u = user();
      expect((await otp().sendOtp("+50683330003", u, "login")).ok).toBe(true);
      expect((await otp().sendOtp("+50684440004", u, "login")).ok).toBe(true);
      expect(await otp().sendOtp("+50685550005", u, "login")).toMatchObject({ rule: "user" });
      // The prefix is the number without its last four digits: +5068888 for all of +5068888xxxx.
      for (const phone of ["+50688881002", "+50688881003", "+50688881004"])
        expect((await otp().sendOtp(phone, user(), "login")).ok).toBe(true);
      expect(await otp().sendOtp("+50688881005", user(), "login")).toMatchObject({ rule: "prefix" });
      expect((await otp().sendOtp("+50670001001", user(), "login")).ok).toBe(true);
      expect(await otp().sendOtp("+50660001001", user(), "login")).toMatchObject({ rule: "global" });
      expect(channel.sent).toHaveLength(6);
    });

    it("verify tries per number and purpose over a longer window: resends cannot buy endless guesses", async () => {
      if (skip) return;
      await start({ RATE_LIMIT_VERIFY: "7/1h", OTP_MAX_ATTEMPTS: "5" });
      const u = user();
      const phone = "+50688880004";
      await otp().sendOtp(phone, u, "login");
      for (let i = 0; i < 4; i++) expect(await otp().verifyOtp(phone, "000000", u, "login")).toMatchObject({ code: "otp_invalid" });
      // A new challenge (another user) on the same number and purpose shares the cap.
      const other = user();
      await otp().sendOtp(phone, other, "login");
      for (let i = 0; i < 3; i++) expect((await otp().verifyOtp(phone, "000000", other, "login")).ok).toBe(false);
      const capped = await otp().verifyOtp(phone, channel.lastCodeTo(phone), other, "login");
      expect(capped).toMatchObject({ ok: false, code: "rate_limited", rule: "verify", retryAfter: 3600 });
      // Another purpose is another budget.
      await otp().sendOtp(phone, other, "registration");
      expect((await otp().verifyOtp(phone, channel.lastCodeTo(phone), other, "registration")).ok).toBe(true);
    });

    it("destination rules: allowed countries, blocked prefixes and number types; safe numbers pass", async () => {
      if (skip) return;
      await start({ ALLOWED_COUNTRIES: "CR,US", BLOCKED_PREFIXES: "+5066", SAFE_NUMBERS: "+447911123456" });
      expect(await otp().sendOtp("+34612345678", user(), "login")).toMatchObject({ code: "destination_not_allowed", rule: "country" });
      expect(await otp().sendOtp("+50660001234", user(), "login")).toMatchObject({
        code: "destination_not_allowed",
        rule: "prefix_blocked",
      });
      expect(await otp().sendOtp("+19005551234", user(), "login")).toMatchObject({ code: "destination_not_allowed", rule: "number_type" });
      expect((await otp().sendOtp("+447911123456", user(), "login")).ok).toBe(true);
      expect((await otp().sendOtp("+50688887777", user(), "login")).ok).toBe(true);
      expect(channel.sent.map((m) => m.to)).toEqual(["+447911123456", "+50688887777"]);
      expect((await refusals()).map((r) => r.rule)).toEqual(["country", "number_type", "prefix_blocked"]);
    });

    it("the conversion breaker pauses a country with too few verifications, then lets it through again", async () => {
      if (skip) return;
      await start({
        CONVERSION_BREAKER_MIN_SENDS: "4",
        CONVERSION_BREAKER_MIN_RATE: "50",
        CONVERSION_BREAKER_WINDOW: "1h",
        CONVERSION_BREAKER_PAUSE: "30m",
        SAFE_NUMBERS: "+50688889999",
      });
      // Window 1: four sends to Costa Rica, one verified (25 % < 50 %).
      const numbers = ["+50687770007", "+50689990009", "+50683330003", "+50684440004"];
      const users = numbers.map(() => user());
      for (const [i, phone] of numbers.entries()) expect((await otp().sendOtp(phone, users[i] as string, "login")).ok).toBe(true);
      expect((await otp().verifyOtp(numbers[0] as string, channel.lastCodeTo(numbers[0] as string), users[0] as string, "login")).ok).toBe(
        true,
      );
      // Still the same window: the breaker judges complete windows only.
      expect((await otp().sendOtp("+50685550005", user(), "login")).ok).toBe(true);
      clock.advance(3600);
      expect(await otp().sendOtp("+50686660006", user(), "login")).toMatchObject({
        code: "rate_limited",
        rule: "conversion_breaker",
        retryAfter: 1800,
      });
      // Another country is not affected, and a safe number always passes.
      expect((await otp().sendOtp("+14155550123", user(), "login")).ok).toBe(true);
      expect((await otp().sendOtp("+50688889999", user(), "login")).ok).toBe(true);
      clock.advance(1800);
      expect((await otp().sendOtp("+50686660006", user(), "login")).ok).toBe(true);
    });

    it("the breaker reads a busy country's counters once a second, not once per send", async () => {
      if (skip) return;
      await start({ CONVERSION_BREAKER_MIN_SENDS: "4", CONVERSION_BREAKER_MIN_RATE: "50" });
      const limiter = (service as TestService).vericode.protection.limiter;
      const reads = vi.spyOn(limiter, "read");
      // Same country and number range (+5068777…), same second: one read.
      for (const phone of ["+50687770001", "+50687770002", "+50687770003"])
        expect((await otp().sendOtp(phone, user(), "login")).ok).toBe(true);
      expect(reads).toHaveBeenCalledTimes(1);
      // A second later the counters are read again.
      clock.advance(1);
      expect((await otp().sendOtp("+50687770004", user(), "login")).ok).toBe(true);
      expect(reads).toHaveBeenCalledTimes(2);
      reads.mockRestore();
    });

    it("a country whose codes are used keeps sending", async () => {
      if (skip) return;
      await start({ CONVERSION_BREAKER_MIN_SENDS: "3", CONVERSION_BREAKER_MIN_RATE: "50" });
      for (const phone of ["+50687770007", "+50689990009", "+50683330003"]) {
        const u = user();
        await otp().sendOtp(phone, u, "login");
        expect((await otp().verifyOtp(phone, channel.lastCodeTo(phone), u, "login")).ok).toBe(true);
      }
      clock.advance(3600);
      expect((await otp().sendOtp("+50684440004", user(), "login")).ok).toBe(true);
    });

    it("the budget: each send reserves its estimate, a send that would pass the cap is refused, failures give it back", async () => {
      if (skip) return;
      // Costa Rica is estimated at $0.057: three messages fit in $0.20, a fourth does not.
      await start({ SMS_BUDGET_USD: "0.2", SMS_BUDGET_PERIOD: "day" });
      const protection = (service as TestService).vericode.protection;
      for (const phone of ["+50687770007", "+50689990009"]) expect((await otp().sendOtp(phone, user(), "login")).ok).toBe(true);
      // A refused message costs nothing: its reservation is given back.
      channel.failures.push({ ok: false, kind: "rejected", providerCode: "21610", message: "unsubscribed" });
      expect(await otp().sendOtp("+50684440004", user(), "login")).toMatchObject({ code: "provider_rejected" });
      // The provider's own price replaces the estimate when it reports one.
      channel.priceMicros = 45_000;
      const third = await otp().sendOtp("+50683330003", user(), "login");
      expect(third.ok).toBe(true);
      expect(await protection.budgetState(clock.now().getTime())).toEqual({
        period: "2026-06-01",
        capMicros: 200_000,
        spentMicros: 57_000 + 57_000 + 45_000,
        reservedMicros: 0,
      });
      const refused = await otp().sendOtp("+50685550005", user(), "login");
      expect(refused).toMatchObject({ ok: false, code: "budget_exceeded", rule: "budget", retryAfter: 12 * 3600 });
      expect(channel.sent).toHaveLength(3);
      if (third.ok)
        expect(await (service as TestService).vericode.store.findCode(third.id)).toMatchObject({
          priceMicros: 45_000,
          priceFinal: true,
          country: "CR",
        });
      // A refused send gives back what the limits took: the number can still be sent to tomorrow.
      clock.advance(12 * 3600);
      expect((await otp().sendOtp("+50685550005", user(), "login")).ok).toBe(true);
    });

    it("test numbers are exempt from every limit, rule and budget", async () => {
      if (skip) return;
      await start({ OTP_TEST_NUMBERS: "+15005550006=424242", RATE_LIMIT_NUMBER: "1/1h", ALLOWED_COUNTRIES: "CR", SMS_BUDGET_USD: "0.01" });
      for (let i = 0; i < 3; i++) expect((await otp().sendOtp("+15005550006", user(), "login")).ok).toBe(true);
      expect(channel.sent).toHaveLength(0);
    });
  });
}

describe("protection fails closed", () => {
  it("when the limiter's Redis is unreachable: 503 service_unavailable and nothing sent", async () => {
    const db = sqliteDatabase();
    const channel = new RecordingChannel();
    const service = await startService(db, { channel, env: { REDIS_URL: "redis://127.0.0.1:1", RATE_LIMIT_NUMBER: "10/1h" } });
    try {
      const error = await service.vericode.otp.sendOtp("+50688880009", "usr_x", "login").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VericodeError);
      expect(error).toMatchObject({ code: "service_unavailable", status: 503 });
      expect(channel.sent).toHaveLength(0);
    } finally {
      await service.close();
      await db.drop();
    }
  });
});

describe("a send that the database fails after Redis took its units", () => {
  it("gives the units back: the failure leaves nothing taken", async (context) => {
    if (!(await redisAvailable())) return context.skip();
    const db = sqliteDatabase();
    const namespace = redisNamespace();
    const channel = new RecordingChannel();
    const service = await startService(db, {
      channel,
      env: { REDIS_URL: "redis://127.0.0.1:6379", RATE_LIMIT_NUMBER: "10/1h" },
      redisPrefix: namespace.prefix,
    });
    try {
      const { otp, protection, store } = service.vericode;
      await store.close();
      const error = await otp.sendOtp("+50688880019", "usr_y", "login").catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "service_unavailable", status: 503 });
      expect(channel.sent).toHaveLength(0);
      const [number] = await protection.limiter.read(["number:+50688880019"], Date.now());
      expect(number?.count).toBe(0);
    } finally {
      await service.close().catch(() => {});
      await namespace.drop();
      await db.drop();
    }
  });
});

describe("store", () => {
  it("a budget reservation larger than the cap is refused even on an empty period", async () => {
    const db = sqliteDatabase();
    const store = await db.createStore();
    try {
      expect(await store.reserveBudget({ period: "total", micros: 300, capMicros: 200 }, T0)).toBe(false);
      expect(await store.reserveBudget({ period: "total", micros: 200, capMicros: 200 }, T0)).toBe(true);
      expect(await store.reserveBudget({ period: "total", micros: 1, capMicros: 200 }, T0)).toBe(false);
      expect(await store.budget("total")).toEqual({ spentMicros: 0, reservedMicros: 200 });
    } finally {
      await store.close();
      await db.drop();
    }
  });
});
