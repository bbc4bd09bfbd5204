import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutgoingMessage } from "../../src/channels/channel.js";
import { SmtpEmailChannel } from "../../src/channels/email.js";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { testMessage } from "../support/messages.js";
import { startService, type TestService } from "../support/service.js";
import { TestSmtpServer } from "../support/smtp-server.js";

const message = (overrides: Partial<OutgoingMessage> = {}) =>
  testMessage({ to: "ana@example.com", reference: "otp_mail", deadline: Date.now() + 3000, ...overrides });

// What every channel must do (refusals by code, outages, timeouts, the deadline, logs) is in conformance.test.ts.
describe("SmtpEmailChannel against a real SMTP server", () => {
  const smtp = new TestSmtpServer();
  let channel: SmtpEmailChannel;

  beforeAll(async () => {
    await smtp.start();
    channel = new SmtpEmailChannel({ url: smtp.url, from: "Parque Marino <no-reply@parquemarino.example>" });
  });
  afterAll(async () => {
    channel.close();
    await smtp.stop();
  });

  it("delivers a text and an HTML part in the message's language, the code in the subject", async () => {
    const outcome = await channel.send(message());
    expect(outcome).toMatchObject({ ok: true, deliveryStatus: "sent" });
    const mail = smtp.received.at(-1);
    expect(mail?.from?.text).toBe('"Parque Marino" <no-reply@parquemarino.example>');
    expect(mail?.subject).toBe("482913 es tu código de verificación");
    expect(mail?.text?.trim()).toBe("482913 es tu código de acceso. Vence en 10 min. No lo compartas.");
    expect(mail?.html).toContain(">482913</p>");
    expect(mail?.html).toContain('lang="es"');
    expect(mail?.headers.get("x-vericode-id")).toBe("otp_mail");
  });

  it("escapes what it puts into HTML", async () => {
    await channel.send(message({ body: "<b>1</b> & more", code: "111111" }));
    expect(smtp.received.at(-1)?.html).toContain("&lt;b&gt;1&lt;/b&gt; &amp; more");
  });
});

describe("the email channel over HTTP", () => {
  const smtp = new TestSmtpServer();
  let db: TestDatabase;
  let service: TestService;
  const headers = { authorization: "" };

  beforeAll(async () => {
    await smtp.start();
    db = sqliteDatabase();
    service = await startService(db, { env: { SMTP_URL: smtp.url, EMAIL_FROM: "no-reply@parquemarino.example" } });
    headers.authorization = `Bearer ${service.tokenFor("usr_mail")}`;
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
    await smtp.stop();
  });

  const post = (url: string, payload: object) => service.app.inject({ method: "POST", url, headers, payload });

  it("sends to `email` and verifies with the same address in any case", async () => {
    const sent = await post("/api/v1/messaging/send-otp/", { email: "Ana@Example.com", purpose: "login", channel: "email", locale: "pt" });
    expect(sent.statusCode).toBe(200);
    const mail = smtp.received.at(-1);
    expect(mail?.to && "text" in mail.to ? mail.to.text : "").toBe("ana@example.com");
    const code = /^(\d{6}) /.exec(mail?.subject ?? "")?.[1] ?? "";
    expect(mail?.text).toContain(`${code} é o seu código de acesso`);
    const record = await service.app.inject({ method: "GET", url: `/api/v1/messaging/otp/${sent.json().id}/`, headers });
    expect(record.json()).toMatchObject({ channel: "email", phone_number: "ana@example.com", status: "sent" });
    const verified = await post("/api/v1/messaging/verify-otp/", { email: "ana@example.com", otp_code: code, purpose: "login" });
    expect(verified.statusCode).toBe(200);
  });

  it("asks for `email` on the email channel and for `phone_number` on the others", async () => {
    const noEmail = await post("/api/v1/messaging/send-otp/", { phone_number: "+50683330003", purpose: "login", channel: "email" });
    expect(noEmail.json()).toMatchObject({ code: "validation_error", errors: [{ field: "email" }] });
    const noPhone = await post("/api/v1/messaging/send-otp/", { email: "ana@example.com", purpose: "login" });
    expect(noPhone.json()).toMatchObject({ code: "validation_error", errors: [{ field: "phone_number" }] });
    const bad = await post("/api/v1/messaging/send-otp/", { email: "not-an-address", purpose: "login", channel: "email" });
    expect(bad.json()).toMatchObject({ code: "validation_error" });
  });

  it("a registration code verified by email does not touch the user's phone number", async () => {
    const registered = await service.app.inject({
      method: "POST",
      url: "/api/v1/auth/register/",
      payload: { username: "mailuser", password: "correct horse battery" },
    });
    const user = registered.json().user.id as string;
    const auth = { authorization: `Bearer ${registered.json().access}` };
    await service.app.inject({
      method: "POST",
      url: "/api/v1/messaging/send-otp/",
      headers: auth,
      payload: { email: "m@example.com", purpose: "registration", channel: "email" },
    });
    const mail = smtp.received.at(-1);
    const code = /^(\d{6}) /.exec(mail?.subject ?? "")?.[1] ?? "";
    // An address is confirmed by email, not a number.
    expect(mail?.text?.trim()).toBe(`${code} is your code to confirm your email address. It expires in 10 min. Never share it.`);
    const verified = await service.app.inject({
      method: "POST",
      url: "/api/v1/messaging/verify-otp/",
      headers: auth,
      payload: { email: "m@example.com", otp_code: code, purpose: "registration" },
    });
    expect(verified.statusCode).toBe(200);
    expect(await service.vericode.store.findUserById(user)).toMatchObject({ phoneNumber: null, phoneVerified: false });
  });

  it("the library refuses a malformed address with invalid_email", async () => {
    expect(await service.vericode.otp.sendOtp("ana@", "usr_mail", "login", { channel: "email" })).toMatchObject({
      ok: false,
      code: "invalid_email",
    });
  });
});
