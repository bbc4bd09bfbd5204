import type { OutgoingMessage } from "../../src/channels/channel.js";

/** A message as OtpService hands it to a channel: Spanish, a login code, two seconds to go. */
export function testMessage(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    to: "+50683330003",
    body: "482913 es tu código de acceso. Vence en 10 min. No lo compartas.",
    ttlSeconds: 600,
    reference: "otp_1",
    deadline: Date.now() + 2000,
    code: "482913",
    locale: "es",
    purpose: "login",
    ...overrides,
  };
}
