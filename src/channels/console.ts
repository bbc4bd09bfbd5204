import type { Logger } from "../logger.js";
import type { Channel, DeliveryOutcome, OutgoingMessage } from "./channel.js";

/**
 * Development channel: prints each message to the log instead of sending it. It is the only place a
 * code appears in a log, which is why production refuses it.
 */
export class ConsoleChannel implements Channel {
  readonly name = "console";
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  async send(message: OutgoingMessage): Promise<DeliveryOutcome> {
    this.#log.info(
      { channel: "console", to: message.to, id: message.reference, text: message.body },
      `SMS to ${message.to}: ${message.body}`,
    );
    return { ok: true, providerMessageId: null, deliveryStatus: "logged" };
  }
}
