import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { TestSmtpServer } from "../support/smtp-server.js";
import { FakeTwilio } from "../support/twilio-server.js";
import { lastCode, mobile, startVerifyService, type VerifyTestService } from "../support/verify.js";

/** What the SDK raises for a non-2xx answer. */
async function restError(call: Promise<unknown>): Promise<{ status: number; code: number; details?: unknown }> {
  try {
    await call;
  } catch (error) {
    return error as { status: number; code: number };
  }
  throw new Error("the call succeeded");
}

/**
 * vericode's protection on the /v2 API, in Twilio's codes; the application server that calls it is not
 * its end user, so per-user and per-address limits never count the server itself.
 */
describe("Verify v2 with vericode's protection", () => {
  const fake = new FakeTwilio();
  let db: TestDatabase;
  let service: VerifyTestService | null = null;

  const start = async (env: Record<string, string>) => {
    db = sqliteDatabase();
    service = await startVerifyService(db, fake, env);
    const client = service.client();
    const sid = (await client.verify.v2.services.create({ friendlyName: "Guarded" })).sid;
    return client.verify.v2.services(sid);
  };

  beforeAll(() => fake.start());
  afterAll(() => fake.stop());
  afterEach(async () => {
    await service?.close();
    service = null;
    await db.drop();
  });

  it("a busy application is not one user: 5 starts pass RATE_LIMIT_USER and RATE_LIMIT_IP of 2/h; DeviceIp counts", async () => {
    const verify = await start({ RATE_LIMIT_USER: "2/1h", RATE_LIMIT_IP: "2/1h" });
    for (let i = 0; i < 5; i++) expect((await verify.verifications.create({ to: mobile(), channel: "sms" })).status).toBe("pending");
    await verify.verifications.create({ to: mobile(), channel: "sms", deviceIp: "198.51.100.4" });
    await verify.verifications.create({ to: mobile(), channel: "sms", deviceIp: "198.51.100.4" });
    expect(await restError(verify.verifications.create({ to: mobile(), channel: "sms", deviceIp: "198.51.100.4" }))).toMatchObject({
      status: 429,
      code: 20429,
    });
  });

  it("per-number limit → 60212; country allow-list → 60605; blocked range → 60410; refused number type → 60205", async () => {
    const verify = await start({
      RATE_LIMIT_NUMBER: "1/1h",
      ALLOWED_COUNTRIES: "CR",
      BLOCKED_PREFIXES: "+5067",
      BLOCKED_NUMBER_TYPES: "FIXED_LINE",
    });
    const to = mobile();
    const first = await verify.verifications.create({ to, channel: "sms" });
    await verify.verifications(first.sid).update({ status: "canceled" });
    expect(await restError(verify.verifications.create({ to, channel: "sms" }))).toMatchObject({ status: 429, code: 60212 });
    expect(await restError(verify.verifications.create({ to: "+14155552671", channel: "sms" }))).toMatchObject({
      status: 403,
      code: 60605,
    });
    expect(await restError(verify.verifications.create({ to: "+50670001234", channel: "sms" }))).toMatchObject({
      status: 403,
      code: 60410,
    });
    // A Costa Rican landline (2xxx xxxx).
    expect(await restError(verify.verifications.create({ to: "+50622123456", channel: "sms" }))).toMatchObject({
      status: 403,
      code: 60205,
    });
  });

  it("SkipSmsToLandlines with lookup: a landline is 60205 by SMS; lookup shows the number's type", async () => {
    const verify = await start({});
    const client = service?.client();
    const sid = (await client?.verify.v2.services.create({ friendlyName: "Lookup", lookupEnabled: true, skipSmsToLandlines: true }))?.sid;
    const lookup = client?.verify.v2.services(sid ?? "");
    expect(await restError(lookup?.verifications.create({ to: "+50622123456", channel: "sms" }) ?? Promise.resolve())).toMatchObject({
      code: 60205,
    });
    const started = await lookup?.verifications.create({ to: mobile(), channel: "sms" });
    expect(started?.lookup).toMatchObject({ carrier: { type: "mobile" } });
    expect((await verify.verifications.create({ to: mobile(), channel: "sms" })).lookup).toEqual({});
  });

  it("the spend budget → 20429, and nothing is sent", async () => {
    const verify = await start({ SMS_BUDGET_USD: "0.01", SMS_BUDGET_PERIOD: "day" });
    const sent = fake.messages.length;
    const refused = await restError(verify.verifications.create({ to: mobile(), channel: "sms" }));
    expect(refused).toMatchObject({ status: 429, code: 20429 });
    expect(fake.messages.length).toBe(sent);
  });

  it("OTP_TEST_NUMBERS: a fixed code, never sent, never limited", async () => {
    const verify = await start({ OTP_TEST_NUMBERS: "+50688880000=424242", RATE_LIMIT_NUMBER: "1/1h" });
    const sent = fake.messages.length;
    for (let i = 0; i < 3; i++) {
      const started = await verify.verifications.create({ to: "+50688880000", channel: "sms" });
      expect(started.sendCodeAttempts.map((a: { channel: string }) => a.channel)).toEqual(["SMS"]);
      expect(await verify.verificationChecks.create({ verificationSid: started.sid, code: "424242" })).toMatchObject({ valid: true });
    }
    expect(fake.messages.length).toBe(sent);
  });

  it("WhatsApp and call travel through vericode's Twilio channels; the code is the same on every channel", async () => {
    const verify = await start({ TWILIO_WHATSAPP_FROM: "whatsapp:+15005550006" });
    const to = mobile();
    await verify.verifications.create({ to, channel: "sms" });
    const code = lastCode(fake, to);
    const viaWhatsapp = await verify.verifications.create({ to, channel: "whatsapp" });
    expect(viaWhatsapp.channel).toBe("whatsapp");
    expect(fake.messages.at(-1)).toMatchObject({ to: `whatsapp:${to}` });
    expect(fake.messages.at(-1)?.body).toContain(code);
    const viaCall = await verify.verifications.create({ to, channel: "call" });
    expect(viaCall.channel).toBe("call");
    expect(viaCall.sendCodeAttempts.map((a: { channel: string }) => a.channel)).toEqual(["SMS", "whatsapp", "call"]);
    expect(fake.calls.at(-1)?.to).toBe(to);
    expect(await verify.verificationChecks.create({ to, code })).toMatchObject({ status: "approved" });
  });

  it("email: To is an address, ChannelConfiguration's from and from_name are the sender, the code checks", async () => {
    const smtp = new TestSmtpServer();
    await smtp.start();
    try {
      const verify = await start({ SMTP_URL: smtp.url, EMAIL_FROM: "no-reply@parquemarino.example" });
      const to = "Ana@Example.com";
      const started = await verify.verifications.create({
        to,
        channel: "email",
        locale: "en",
        channelConfiguration: { from: "verify@acme.example", from_name: "Acme" },
      });
      expect(started).toMatchObject({ to: "ana@example.com", channel: "email", status: "pending" });
      const mail = smtp.received.at(-1);
      expect(mail?.from?.text).toBe('"Acme" <verify@acme.example>');
      const code = /(\d{6})/.exec(mail?.text ?? "")?.[1] ?? "";
      expect(mail?.text).toContain(`Your Guarded verification code is: ${code}.`);
      expect(await verify.verificationChecks.create({ to, code })).toMatchObject({ status: "approved" });
      const odd = await restError(
        verify.verifications.create({ to: "b@example.com", channel: "email", channelConfiguration: { template_id: "d-1" } }),
      );
      expect(odd).toMatchObject({ code: 60200 });
      expect(await restError(verify.verifications.create({ to: "not-an-address", channel: "email" }))).toMatchObject({ code: 60200 });
    } finally {
      await smtp.stop();
    }
  });

  it("RATE_LIMIT_VERIFY bounds checks per number across verifications, as on the native API", async () => {
    const verify = await start({ RATE_LIMIT_VERIFY: "3/1h" });
    const to = mobile();
    const first = await verify.verifications.create({ to, channel: "sms" });
    const wrong = lastCode(fake, to) === "000000" ? "111111" : "000000";
    await verify.verificationChecks.create({ to, code: wrong });
    await verify.verificationChecks.create({ to, code: wrong });
    await verify.verifications(first.sid).update({ status: "canceled" });
    await verify.verifications.create({ to, channel: "sms" });
    await verify.verificationChecks.create({
      verificationSid: (await verify.verifications.create({ to, channel: "sms" })).sid,
      code: wrong,
    });
    expect(await restError(verify.verificationChecks.create({ to, code: lastCode(fake, to) }))).toMatchObject({ status: 429, code: 20429 });
  });

  it("a key removed from OTP_SECRETS ends the verifications made under it: a resend starts a new one", async () => {
    const oldKey = "old:0123456789abcdef0123456789abcdef0123456789abcdef";
    const newKey = "new:fedcba9876543210fedcba9876543210fedcba9876543210";
    const verify = await start({ OTP_SECRET: "", OTP_SECRETS: oldKey });
    const to = mobile();
    const first = await verify.verifications.create({ to, channel: "sms" });
    const serviceSid = first.serviceSid;
    await service?.close();
    // The same database, restarted with only the new key.
    service = await startVerifyService(db, fake, { OTP_SECRET: "", OTP_SECRETS: newKey });
    const again = service.client().verify.v2.services(serviceSid);
    const second = await again.verifications.create({ to, channel: "sms" });
    expect(second.sid).not.toBe(first.sid);
    expect(second.sendCodeAttempts).toHaveLength(1);
    expect(await restError(again.verifications(first.sid).fetch())).toMatchObject({ status: 404, details: { status: "canceled" } });
    expect(await again.verificationChecks.create({ to, code: lastCode(fake, to) })).toMatchObject({ status: "approved" });
  });

  it("RATE_LIMIT_NUMBER's default, 10 an hour, answers 60212 at a second verification's 6th send, before its 60203", async () => {
    const verify = await start({ RATE_LIMIT_NUMBER: "10/1h" });
    const to = mobile();
    let sid = "";
    for (let i = 0; i < 5; i++) sid = (await verify.verifications.create({ to, channel: "sms" })).sid;
    expect(await restError(verify.verifications.create({ to, channel: "sms" }))).toMatchObject({ code: 60203 });
    await verify.verifications(sid).update({ status: "canceled" });
    for (let i = 0; i < 5; i++) expect((await verify.verifications.create({ to, channel: "sms" })).status).toBe("pending");
    expect(await restError(verify.verifications.create({ to, channel: "sms" }))).toMatchObject({ status: 429, code: 60212 });
  });

  it("a refused send gives back what it took: after a 60203 the number's limit still has room, and no budget stays reserved", async () => {
    const verify = await start({ RATE_LIMIT_NUMBER: "6/1h", SMS_BUDGET_USD: "100", SMS_BUDGET_PERIOD: "day" });
    const to = mobile();
    let sid = "";
    for (let i = 0; i < 5; i++) sid = (await verify.verifications.create({ to, channel: "sms" })).sid;
    expect(await restError(verify.verifications.create({ to, channel: "sms" }))).toMatchObject({ code: 60203 });
    await verify.verifications(sid).update({ status: "canceled" });
    // Five sends took five units of six: the 60203 took none, so a sixth send passes.
    expect((await verify.verifications.create({ to, channel: "sms" })).status).toBe("pending");
    expect(await restError(verify.verifications.create({ to, channel: "sms" }))).toMatchObject({ code: 60212 });
    const budget = await service?.vericode.protection.budgetState(Date.now());
    expect(budget?.reservedMicros).toBe(0);
    expect(budget?.spentMicros).toBeGreaterThan(0);
  });
});
