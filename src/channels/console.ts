import type { Logger } from "../logger.js";
import type { Channel, ChannelName, DeliveryOutcome, OutgoingMessage } from "./channel.js";

const LABEL: Record<ChannelName, string> = { sms: "SMS", whatsapp: "WhatsApp", voice: "Voice call", email: "Email" };

/**
 * Development channel: prints each message to the log instead of sending it. It is the only place a
 * code appears in a log, which is why production refuses it.
 */
export class ConsoleChannel implements Channel {
  readonly name: ChannelName;
  readonly #log: Logger;

  /** One console channel stands in for each channel kind (`sms` unless told). */
  constructor(log: Logger, name: ChannelName = "sms") {
    this.#log = log;
    this.name = name;
  }

  async send(message: OutgoingMessage): Promise<DeliveryOutcome> {
    this.#log.info(
      { channel: "console", kind: this.name, to: message.to, id: message.reference, text: message.body },
      `${LABEL[this.name]} to ${message.to}: ${message.body}`,
    );
    return { ok: true, providerMessageId: null, deliveryStatus: "logged" };
  }
}
