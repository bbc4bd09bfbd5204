import type { Purpose } from "../records.js";

/** How a code travels: to a phone number, or (email) to an address. */
export const CHANNEL_NAMES = ["sms", "whatsapp", "voice", "email"] as const;
export type ChannelName = (typeof CHANNEL_NAMES)[number];

export function isChannelName(value: unknown): value is ChannelName {
  return typeof value === "string" && (CHANNEL_NAMES as readonly string[]).includes(value);
}

/** One message for one recipient, ready to leave. */
export interface OutgoingMessage {
  /** E.164 number, or an email address for the email channel. */
  to: string;
  body: string;
  /** Seconds the message is worth delivering: the code's lifetime (Twilio's ValidityPeriod). */
  ttlSeconds: number;
  /** The record id, for the provider's logs and callbacks. */
  reference: string;
  /** Epoch ms by which the send must be over, retries included. */
  deadline: number;
  /** The code itself, for channels that do not send `body` as it is (a voice call, a WhatsApp template). */
  code: string;
  /** The resolved language of `body` (`es`, `pt`…). */
  locale: string;
  purpose: Purpose;
  /** The email's sender for this message (the /v2 API's ChannelConfiguration `from`, `from_name`); else EMAIL_FROM. */
  sender?: { address: string; name: string | null };
}

/**
 * How a send ended. `timeout` means the message may have gone out: the caller keeps the code valid and
 * must not retry blindly.
 */
export type DeliveryOutcome =
  | {
      ok: true;
      providerMessageId: string | null;
      deliveryStatus: string | null;
      /** What the provider charged, in millionths of a US dollar, when it says so at once. */
      priceMicros?: number | null;
    }
  | {
      ok: false;
      kind: "invalid_number" | "rejected" | "throttled" | "failed" | "timeout";
      providerCode: string | null;
      message: string;
    };

export interface Channel {
  /** Stored on each record: `sms`, `whatsapp`, `voice`. */
  readonly name: ChannelName;
  send(message: OutgoingMessage): Promise<DeliveryOutcome>;
}
