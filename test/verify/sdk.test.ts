import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS, type TestDatabase } from "../support/databases.js";
import { FakeTwilio } from "../support/twilio-server.js";
import {
  lastCode,
  mobile,
  startVerifyService,
  VERIFY_ACCOUNT_SID,
  VERIFY_API_KEY,
  VERIFY_API_SECRET,
  type VerifyTestService,
} from "../support/verify.js";

/** What the SDK raises for a non-2xx answer (RestException): the fields an application reads. */
async function restError(call: Promise<unknown>): Promise<{ status: number; code: number; moreInfo: string; details?: unknown }> {
  try {
    await call;
  } catch (error) {
    const e = error as { status: number; code: number; moreInfo: string; details?: unknown; constructor: { name: string } };
    expect(e.constructor.name).toBe("RestException");
    return e;
  }
  throw new Error("the call succeeded");
}

/**
 * An application written against Twilio Verify with the official `twilio` SDK, unmodified, pointed at
 * vericode with `client.verify.baseUrl` and vericode's credentials: start → wrong code → right code →
 * resend → cancel → bad credentials, on SQLite and PostgreSQL. Codes are read from our Twilio server.
 */
describe.each(DIALECTS)("Twilio Verify v2 through the official SDK on $name", ({ make }) => {
  const fake = new FakeTwilio();
  let db: TestDatabase | null = null;
  let service: VerifyTestService;
  let serviceSid: string;

  beforeAll(async () => {
    db = await make();
    if (db === null) return;
    await fake.start();
    service = await startVerifyService(db, fake);
    serviceSid = (await service.client().verify.v2.services.create({ friendlyName: "Parque Marino" })).sid;
  });
  afterAll(async () => {
    if (db === null) return;
    await service.close();
    await fake.stop();
    await db.drop();
  });

  it("creates and fetches a service as Twilio does", async () => {
    if (db === null) return;
    const client = service.client();
    const created = await client.verify.v2.services.create({ friendlyName: "Acme", codeLength: 8, doNotShareWarningEnabled: true });
    expect(created.sid).toMatch(/^VA[0-9a-f]{32}$/);
    expect(created).toMatchObject({ accountSid: VERIFY_ACCOUNT_SID, friendlyName: "Acme", codeLength: 8, doNotShareWarningEnabled: true });
    expect(created.url).toBe(`${service.url}/v2/Services/${created.sid}`);
    expect(created.dateCreated).toBeInstanceOf(Date);
    const fetched = await client.verify.v2.services(created.sid).fetch();
    expect(fetched.friendlyName).toBe("Acme");
    const updated = await client.verify.v2.services(created.sid).update({ friendlyName: "Acme Two" });
    expect(updated.friendlyName).toBe("Acme Two");
    expect(await client.verify.v2.services(created.sid).remove()).toBe(true);
    expect(await restError(client.verify.v2.services(created.sid).fetch())).toMatchObject({ status: 404, code: 20404 });
  });

  it("start → wrong code → right code: pending/false, then approved/true, then the verification is gone (404)", async () => {
    if (db === null) return;
    const verify = service.client().verify.v2.services(serviceSid);
    const to = mobile();
    const started = await verify.verifications.create({ to, channel: "sms" });
    expect(started).toMatchObject({ to, channel: "sms", status: "pending", valid: false, serviceSid, accountSid: VERIFY_ACCOUNT_SID });
    expect(started.sid).toMatch(/^VE[0-9a-f]{32}$/);
    expect(started.sendCodeAttempts).toHaveLength(1);
    expect(fake.messages.at(-1)?.body).toMatch(/^(Tu código de Parque Marino es|Your Parque Marino verification code is): \d{6}\.$/);
    const code = lastCode(fake, to);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, "0");
    expect(await verify.verificationChecks.create({ to, code: wrong })).toMatchObject({
      status: "pending",
      valid: false,
      sid: started.sid,
    });
    expect(await verify.verificationChecks.create({ to, code })).toMatchObject({ status: "approved", valid: true, sid: started.sid });
    expect(await restError(verify.verificationChecks.create({ to, code }))).toMatchObject({ status: 404, code: 20404 });
    // vericode tells why (a Twilio 404 does not): the SDK passes `details` on.
    const gone = await restError(verify.verifications(started.sid).fetch());
    expect(gone).toMatchObject({ status: 404, code: 20404, details: { status: "approved", verification_sid: started.sid } });
  });

  it("a resend is the same verification and the same code; the 6th send is 60203 and sends nothing", async () => {
    if (db === null) return;
    const verify = service.client().verify.v2.services(serviceSid);
    const to = mobile();
    const first = await verify.verifications.create({ to, channel: "sms" });
    const code = lastCode(fake, to);
    for (let i = 2; i <= 5; i++) {
      const again = await verify.verifications.create({ to, channel: "sms" });
      expect(again.sid).toBe(first.sid);
      expect(again.sendCodeAttempts).toHaveLength(i);
      expect(lastCode(fake, to)).toBe(code);
    }
    const sent = fake.messages.length;
    expect(await restError(verify.verifications.create({ to, channel: "sms" }))).toMatchObject({ status: 429, code: 60203 });
    expect(fake.messages.length).toBe(sent);
    expect(await verify.verificationChecks.create({ verificationSid: first.sid, code })).toMatchObject({ status: "approved" });
  });

  it("five checks at most: the 6th is 60202 even with the right code, and then the verification is gone", async () => {
    if (db === null) return;
    const verify = service.client().verify.v2.services(serviceSid);
    const to = mobile();
    await verify.verifications.create({ to, channel: "sms" });
    const code = lastCode(fake, to);
    const wrong = code === "000000" ? "111111" : "000000";
    for (let i = 0; i < 5; i++) expect(await verify.verificationChecks.create({ to, code: wrong })).toMatchObject({ status: "pending" });
    expect(await restError(verify.verificationChecks.create({ to, code }))).toMatchObject({ status: 429, code: 60202 });
    expect(await restError(verify.verificationChecks.create({ to, code }))).toMatchObject({ status: 404, code: 20404 });
    // A new start is a new verification with a new code.
    const next = await verify.verifications.create({ to, channel: "sms" });
    expect(await verify.verificationChecks.create({ verificationSid: next.sid, code: lastCode(fake, to) })).toMatchObject({ valid: true });
  });

  it("cancel: the verification ends, a check of it is 404, and a fetch says it was canceled", async () => {
    if (db === null) return;
    const verify = service.client().verify.v2.services(serviceSid);
    const to = mobile();
    const started = await verify.verifications.create({ to, channel: "sms" });
    expect(await verify.verifications(started.sid).update({ status: "canceled" })).toMatchObject({ status: "canceled", sid: started.sid });
    expect(await restError(verify.verificationChecks.create({ to, code: lastCode(fake, to) }))).toMatchObject({ status: 404, code: 20404 });
    expect(await restError(verify.verifications(started.sid).fetch())).toMatchObject({
      status: 404,
      code: 20404,
      details: { status: "canceled" },
    });
    expect(await restError(verify.verifications(started.sid).update({ status: "approved" }))).toMatchObject({
      status: 404,
      code: 20404,
      details: { status: "canceled" },
    });
  });

  it("an application may approve a pending verification itself", async () => {
    if (db === null) return;
    const verify = service.client().verify.v2.services(serviceSid);
    const started = await verify.verifications.create({ to: mobile(), channel: "sms" });
    expect(await verify.verifications(started.sid).fetch()).toMatchObject({ status: "pending" });
    expect(await verify.verifications(started.sid).update({ status: "approved" })).toMatchObject({ status: "approved", valid: true });
  });

  it("bad credentials are 401 / 20003 and change nothing; an API key works as Twilio's do", async () => {
    if (db === null) return;
    const sent = fake.messages.length;
    const wrong = service.client(VERIFY_ACCOUNT_SID, "not-the-token-0123456789abcdef01234");
    expect(await restError(wrong.verify.v2.services(serviceSid).verifications.create({ to: mobile(), channel: "sms" }))).toMatchObject({
      status: 401,
      code: 20003,
      moreInfo: "https://www.twilio.com/docs/errors/20003",
    });
    expect(fake.messages.length).toBe(sent);
    const keyed = service.client(VERIFY_API_KEY, VERIFY_API_SECRET, { accountSid: VERIFY_ACCOUNT_SID });
    expect((await keyed.verify.v2.services(serviceSid).fetch()).sid).toBe(serviceSid);
  });

  it("lists services page by page through the SDK, following vericode's own URLs", async () => {
    if (db === null) return;
    const client = service.client();
    for (let i = 0; i < 3; i++) await client.verify.v2.services.create({ friendlyName: `Paged ${i}` });
    const all = await client.verify.v2.services.list({ pageSize: 2 });
    expect(all.map((s) => s.friendlyName)).toEqual(expect.arrayContaining(["Paged 0", "Paged 1", "Paged 2"]));
    const page = await client.verify.v2.services.page({ pageSize: 2 });
    expect(page.nextPageUrl).toMatch(new RegExp(`^${service.url}/v2/Services\\?PageSize=2&Page=1`));
  });

  it("parameters vericode does not take are 60200, naming the parameter", async () => {
    if (db === null) return;
    const verify = service.client().verify.v2.services(serviceSid);
    expect(await restError(verify.verifications.create({ to: "88887777", channel: "sms" }))).toMatchObject({ status: 400, code: 60200 });
    const sna = await restError(verify.verifications.create({ to: mobile(), channel: "sna" }));
    expect(sna).toMatchObject({ status: 400, code: 60200, details: { parameter: "Channel" } });
    const custom = await restError(verify.verifications.create({ to: mobile(), channel: "sms", customCode: "123456" }));
    expect(custom).toMatchObject({ code: 60200, details: { parameter: "CustomCode" } });
  });
});
