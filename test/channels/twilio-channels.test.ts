import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { OutgoingMessage } from "../../src/channels/channel.js";
import { TwilioVoiceChannel, TwilioWhatsAppChannel } from "../../src/channels/twilio-sms.js";
import { voiceTwiml } from "../../src/channels/voice.js";
import type { TwilioConfig } from "../../src/config.js";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { testMessage } from "../support/messages.js";
import { startService, type TestService } from "../support/service.js";
import { FakeTwilio } from "../support/twilio-server.js";

const message = (overrides: Partial<OutgoingMessage> = {}) =>
  testMessage({ body: "123456 es tu código de acceso. Vence en 10 min. No lo compartas.", code: "123456", ...overrides });

describe("WhatsApp and voice through the twilio SDK", () => {
  const twilio = new FakeTwilio();
  let config: TwilioConfig;

  beforeAll(async () => {
    await twilio.start();
    config = twilio.config();
  });
  afterAll(() => twilio.stop());
  beforeEach(() => {
    twilio.messages.length = 0;
    twilio.calls.length = 0;
  });

  it("WhatsApp goes to whatsapp: addresses with the localized text", async () => {
    const outcome = await new TwilioWhatsAppChannel(config, { statusCallback: "https://otp.example.com/cb" }).send(message());
    expect(outcome).toMatchObject({ ok: true, deliveryStatus: "queued" });
    expect(twilio.messages[0]).toMatchObject({
      to: "whatsapp:+50683330003",
      from: "whatsapp:+15005550006",
      body: "123456 es tu código de acceso. Vence en 10 min. No lo compartas.",
      contentSid: null,
      statusCallback: "https://otp.example.com/cb",
    });
  });

  it("WhatsApp sends the approved template with the code as variable 1 when TWILIO_WHATSAPP_CONTENT_SID is set", async () => {
    const channel = new TwilioWhatsAppChannel({
      ...config,
      whatsappFrom: "whatsapp:+14155238886",
      whatsappContentSid: `HX${"a".repeat(32)}`,
    });
    expect((await channel.send(message())).ok).toBe(true);
    expect(twilio.messages[0]).toMatchObject({
      from: "whatsapp:+14155238886",
      body: "",
      contentSid: `HX${"a".repeat(32)}`,
      contentVariables: '{"1":"123456"}',
    });
  });

  it("a voice call reads the code digit by digit, twice, in the message's language", async () => {
    const outcome = await new TwilioVoiceChannel(config).send(message({ code: "4071", locale: "es" }));
    expect(outcome).toMatchObject({ ok: true, providerMessageId: expect.stringMatching(/^CA/) });
    const call = twilio.calls[0];
    expect(call).toMatchObject({ to: "+50683330003", from: "+15005550006" });
    expect(call?.twiml).toBe(
      '<Response><Say language="es-MX">Su código de verificación es: 4, 0, 7, 1.</Say><Pause length="1"/><Say language="es-MX">Repito, su código es: 4, 0, 7, 1.</Say></Response>',
    );
    expect(voiceTwiml("12", "xx")).toContain('language="en-US"');
    expect(voiceTwiml("12", "pt-BR")).toContain('language="pt-BR"');
  });
});

describe("channel choice and CHANNEL_FALLBACK over HTTP", () => {
  const twilio = new FakeTwilio();
  let db: TestDatabase;
  let service: TestService;
  const headers = { authorization: "" };

  beforeAll(async () => {
    db = sqliteDatabase();
    await twilio.start();
    service = await startService(db, { env: { ...twilio.env(), CHANNEL_FALLBACK: "whatsapp:sms" } });
    headers.authorization = `Bearer ${service.tokenFor("usr_channels")}`;
  });
  afterAll(async () => {
    await service.close();
    await twilio.stop();
    await db.drop();
  });

  const send = (payload: Record<string, string>) =>
    service.app.inject({ method: "POST", url: "/api/v1/messaging/send-otp/", headers, payload: { purpose: "login", ...payload } });

  it("sends by the channel asked for, and the code verifies whatever the channel", async () => {
    const sent = await send({ phone_number: "+50684440004", channel: "voice" });
    expect(sent.statusCode).toBe(200);
    const call = twilio.calls.at(-1);
    const code = (call?.twiml.match(/: ([\d, ]+)\./)?.[1] ?? "").replaceAll(", ", "");
    expect(code).toMatch(/^\d{6}$/);
    const record = await service.app.inject({ method: "GET", url: `/api/v1/messaging/otp/${sent.json().id}/`, headers });
    expect(record.json()).toMatchObject({ channel: "voice", provider_message_id: call?.sid, fallback_from: null });
    const verified = await service.app.inject({
      method: "POST",
      url: "/api/v1/messaging/verify-otp/",
      headers,
      payload: { phone_number: "+50684440004", otp_code: code, purpose: "login" },
    });
    expect(verified.statusCode).toBe(200);
  });

  it("falls back to SMS when WhatsApp refuses the recipient, and the record says so", async () => {
    twilio.failNext(400, { code: 63016, message: "Failed to send freeform message because you are outside the allowed window." });
    const sent = await send({ phone_number: "+50685550005", channel: "whatsapp" });
    expect(sent.statusCode).toBe(200);
    expect(twilio.messages.at(-1)).toMatchObject({ to: "+50685550005" });
    const record = await service.app.inject({ method: "GET", url: `/api/v1/messaging/otp/${sent.json().id}/`, headers });
    expect(record.json()).toMatchObject({ channel: "sms", fallback_from: "whatsapp", status: "sent" });
  });

  it("does not fall back from the last channel of the list", async () => {
    twilio.failNext(500, { code: 20500 });
    const sent = await send({ phone_number: "+50686660006", channel: "sms" });
    expect(sent.statusCode).toBe(502);
  });

  it("refuses an unknown channel with a validation error", async () => {
    expect((await send({ phone_number: "+50687770007", channel: "pigeon" })).json()).toMatchObject({ code: "validation_error" });
  });
});

describe("a service without a caller id", () => {
  it("answers channel_unavailable for voice and sends nothing", async () => {
    const twilio = new FakeTwilio();
    await twilio.start();
    const db = sqliteDatabase();
    const env = twilio.env({ TWILIO_MESSAGING_SERVICE_SID: `MG${"b".repeat(32)}` });
    delete env.TWILIO_PHONE_NUMBER;
    const service = await startService(db, { env });
    try {
      const response = await service.app.inject({
        method: "POST",
        url: "/api/v1/messaging/send-otp/",
        headers: { authorization: `Bearer ${service.tokenFor("usr_nocaller")}` },
        payload: { phone_number: "+50683330003", purpose: "login", channel: "voice" },
      });
      expect(response.statusCode).toBe(422);
      expect(response.json()).toMatchObject({ code: "channel_unavailable" });
      expect(twilio.calls).toHaveLength(0);
    } finally {
      await service.close();
      await twilio.stop();
      await db.drop();
    }
  });
});
