/** One message for one recipient, ready to leave. */
export interface OutgoingMessage {
  /** E.164 number (or an address the channel understands). */
  to: string;
  body: string;
  /** Seconds the message is worth delivering: the code's lifetime (Twilio's ValidityPeriod). */
  ttlSeconds: number;
  /** The record id, for the provider's logs and callbacks. */
  reference: string;
  /** Epoch ms by which the send must be over, retries included. */
  deadline: number;
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
  /** Stored on each record: `sms`, `console`… */
  readonly name: string;
  send(message: OutgoingMessage): Promise<DeliveryOutcome>;
}
