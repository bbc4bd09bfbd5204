import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { VericodeError } from "../../src/errors.js";
import { DIALECTS, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, startService, type TestService } from "../support/service.js";

const PHONE = "+50688887777";
let n = 0;

for (const dialect of DIALECTS) {
  describe(`OtpService on ${dialect.name}`, () => {
    let db: TestDatabase | null;
    let service: TestService;
    let channel: RecordingChannel;
    let clock: ManualClock;
    let user: string;

    beforeAll(async () => {
      db = await dialect.make();
      if (db === null) return;
      channel = new RecordingChannel();
      clock = new ManualClock(Date.now());
      service = await startService(db, { clock, channel, env: { OTP_TEST_NUMBERS: "+15005550006=424242" } });
    });
    afterAll(async () => {
      if (db === null) return;
      await service.close();
      await db.drop();
    });
    beforeEach((context) => {
      if (db === null) context.skip();
      user = `usr_test_${++n}`;
    });

    const otp = () => service.vericode.otp;

    it("sends a code and keeps only its HMAC", async () => {
      const sent = await otp().sendOtp(PHONE, user, "login");
      expect(sent).toMatchObject({ ok: true, message: "Code sent." });
      if (!sent.ok) return;
      const code = channel.lastCodeTo(PHONE);
      expect(code).toMatch(/^\d{6}$/);
      const record = await service.vericode.store.findCode(sent.id);
      expect(record).toMatchObject({ status: "sent", channel: "sms", purpose: "login", userId: user, phoneNumber: PHONE });
      expect(JSON.stringify(record)).not.toContain(code);
      expect(record?.codeHash).toMatch(/^[0-9a-f]{64}$/);
      expect(sent.expiresAt.getTime() - clock.now().getTime()).toBe(600_000);
      expect(sent.resendAfter.getTime() - clock.now().getTime()).toBe(30_000);
    });

    it("verifies the right code once", async () => {
      await otp().sendOtp(PHONE, { id: user }, "login");
      const code = channel.lastCodeTo(PHONE);
      expect(await otp().verifyOtp(PHONE, code, { id: user }, "login")).toMatchObject({ ok: true });
      expect(await otp().verifyOtp(PHONE, code, user, "login")).toMatchObject({ ok: false, code: "otp_not_found" });
    });

    it("counts wrong tries and says how many remain", async () => {
      await otp().sendOtp(PHONE, user, "login");
      const wrong = wrongCode(channel.lastCodeTo(PHONE));
      expect(await otp().verifyOtp(PHONE, wrong, user, "login")).toEqual({
        ok: false,
        code: "otp_invalid",
        message: "The code is not valid. 4 attempts remain.",
        attemptsRemaining: 4,
      });
    });

    it("refuses an expired code", async () => {
      await otp().sendOtp(PHONE, user, "login");
      const code = channel.lastCodeTo(PHONE);
      clock.advance(600);
      expect(await otp().verifyOtp(PHONE, code, user, "login")).toMatchObject({ ok: false, code: "otp_expired" });
    });

    it("answers otp_not_found when nothing was sent", async () => {
      expect(await otp().verifyOtp(PHONE, "123456", user, "login")).toMatchObject({ ok: false, code: "otp_not_found" });
    });

    it("binds a code to its number, purpose and user", async () => {
      await otp().sendOtp(PHONE, user, "login");
      const code = channel.lastCodeTo(PHONE);
      expect(await otp().verifyOtp(PHONE, code, "usr_someone_else", "login")).toMatchObject({ code: "otp_not_found" });
      expect(await otp().verifyOtp(PHONE, code, user, "password_reset")).toMatchObject({ code: "otp_not_found" });
      expect(await otp().verifyOtp("+50688887778", code, user, "login")).toMatchObject({ code: "otp_not_found" });
      expect(await otp().verifyOtp(PHONE, code, user, "login")).toMatchObject({ ok: true });
    });

    it("refuses a resend within the cooldown, with the seconds to wait", async () => {
      await otp().sendOtp(PHONE, user, "login");
      const sentBefore = channel.sent.length;
      clock.advance(10);
      expect(await otp().sendOtp(PHONE, user, "login")).toMatchObject({ ok: false, code: "rate_limited", retryAfter: 20 });
      expect(channel.sent.length).toBe(sentBefore);
      clock.advance(20);
      expect(await otp().sendOtp(PHONE, user, "login")).toMatchObject({ ok: true });
    });

    it("keeps the last three codes valid after resends, not the fourth-newest", async () => {
      const codes: string[] = [];
      for (let i = 0; i < 4; i++) {
        expect(await otp().sendOtp(PHONE, user, "login")).toMatchObject({ ok: true });
        codes.push(channel.lastCodeTo(PHONE));
        clock.advance(30);
      }
      const [first, second] = codes as [string, string];
      if (!codes.slice(1).includes(first)) {
        expect(await otp().verifyOtp(PHONE, first, user, "login")).toMatchObject({ code: "otp_invalid" });
      }
      expect(await otp().verifyOtp(PHONE, second, user, "login")).toMatchObject({ ok: true });
    });

    it("does not refill the budget of guesses on resend, and locks the challenge when it is spent", async () => {
      await otp().sendOtp(PHONE, user, "login");
      for (let i = 0; i < 3; i++) await otp().verifyOtp(PHONE, wrongCode(channel.lastCodeTo(PHONE)), user, "login");
      clock.advance(30);
      await otp().sendOtp(PHONE, user, "login");
      const code = channel.lastCodeTo(PHONE);
      expect(await otp().verifyOtp(PHONE, wrongCode(code), user, "login")).toMatchObject({ attemptsRemaining: 1 });
      expect(await otp().verifyOtp(PHONE, wrongCode(code), user, "login")).toMatchObject({ code: "otp_attempts_exceeded" });
      // Dead: even the right code is refused now, and no new code is sent until the lock ends.
      expect(await otp().verifyOtp(PHONE, code, user, "login")).toMatchObject({ code: "otp_attempts_exceeded" });
      clock.advance(60);
      const refused = await otp().sendOtp(PHONE, user, "login");
      expect(refused).toMatchObject({ ok: false, code: "rate_limited" });
      expect(refused.ok ? 0 : (refused.retryAfter ?? 0)).toBeGreaterThan(500);
      clock.advance(600);
      expect(await otp().sendOtp(PHONE, user, "login")).toMatchObject({ ok: true });
      expect(await otp().verifyOtp(PHONE, channel.lastCodeTo(PHONE), user, "login")).toMatchObject({ ok: true });
    });

    it("of 20 parallel verifies of the right code exactly one succeeds", async () => {
      await otp().sendOtp(PHONE, user, "login");
      const code = channel.lastCodeTo(PHONE);
      const results = await Promise.all(Array.from({ length: 20 }, () => otp().verifyOtp(PHONE, code, user, "login")));
      expect(results.filter((r) => r.ok)).toHaveLength(1);
    });

    it("50 parallel wrong guesses get at most OTP_MAX_ATTEMPTS tries", async () => {
      await otp().sendOtp(PHONE, user, "login");
      const code = channel.lastCodeTo(PHONE);
      const results = await Promise.all(Array.from({ length: 50 }, () => otp().verifyOtp(PHONE, wrongCode(code), user, "login")));
      // Tries 1-4 are answered otp_invalid, the 5th spends the budget; the other 45 were never compared.
      expect(results.filter((r) => !r.ok && r.code === "otp_invalid")).toHaveLength(4);
      expect(results.filter((r) => !r.ok && r.code === "otp_attempts_exceeded")).toHaveLength(46);
      const phoneKey = { phoneNumber: PHONE, purpose: "login" as const, userId: user };
      expect((await service.vericode.store.getChallenge(phoneKey))?.attempts).toBe(5);
      expect(await otp().verifyOtp(PHONE, code, user, "login")).toMatchObject({ code: "otp_attempts_exceeded" });
    });

    it("a verified registration code marks the user's phone verified", async () => {
      const registered = await service.vericode.accounts.register({ username: `reg${n}`, password: "long enough password" });
      await otp().sendOtp(PHONE, registered.user.id, "registration");
      expect(await otp().verifyOtp(PHONE, channel.lastCodeTo(PHONE), registered.user.id, "registration")).toMatchObject({ ok: true });
      expect(await service.vericode.accounts.me(registered.user.id, false)).toMatchObject({
        phone_number: PHONE,
        phone_verified: true,
      });
    });

    it("test numbers get their fixed code, are never sent and never cooled down", async () => {
      const before = channel.sent.length;
      expect(await otp().sendOtp("+15005550006", user, "login")).toMatchObject({ ok: true });
      expect(await otp().sendOtp("+15005550006", user, "login")).toMatchObject({ ok: true });
      expect(channel.sent.length).toBe(before);
      expect(await otp().verifyOtp("+15005550006", "424242", user, "login")).toMatchObject({ ok: true });
    });

    it("normalises national and formatted numbers only when they are valid", async () => {
      expect(await otp().sendOtp("12345", user, "login")).toMatchObject({ ok: false, code: "invalid_phone_number" });
      expect(await otp().sendOtp("+506 8888 7777", user, "password_reset")).toMatchObject({ ok: true });
      expect(await otp().verifyOtp("+50688887777", channel.lastCodeTo(PHONE), user, "password_reset")).toMatchObject({ ok: true });
    });

    it("throws TypeError on misuse: an unknown purpose or no user", async () => {
      await expect(otp().sendOtp(PHONE, user, "signup")).rejects.toThrow(TypeError);
      await expect(otp().sendOtp(PHONE, "", "login")).rejects.toThrow(TypeError);
    });
  });
}

describe("OtpService when the database is down", () => {
  it("fails closed with service_unavailable and sends nothing", async () => {
    const db = await DIALECTS[0]?.make();
    if (!db) return;
    const channel = new RecordingChannel();
    const service = await startService(db, { channel });
    await service.vericode.store.close();
    await expect(service.vericode.otp.sendOtp(PHONE, "usr_x", "login")).rejects.toMatchObject({ code: "service_unavailable", status: 503 });
    await expect(service.vericode.otp.verifyOtp(PHONE, "123456", "usr_x", "login")).rejects.toBeInstanceOf(VericodeError);
    expect(channel.sent).toHaveLength(0);
    await service.app.close();
    await db.drop();
  });
});

function wrongCode(code: string): string {
  return code.replace(/\d$/, (d) => String((Number(d) + 1) % 10));
}
