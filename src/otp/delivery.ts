/** Where Twilio posts status callbacks: PUBLIC_BASE_URL + this path. */
export const TWILIO_STATUS_PATH = "/api/v1/messaging/twilio/status/";

/**
 * The order of a message's delivery states. Callbacks may repeat or arrive out of order; a status only
 * ever moves forward, so a late `sent` never overwrites `delivered`, and a replay changes nothing.
 * `delivered`, `undelivered`, `failed` and `canceled` are final; `read` (WhatsApp) comes after `delivered`.
 * A call goes initiated → ringing → in-progress → completed (or busy, no-answer, failed).
 */
export const DELIVERY_RANK: Readonly<Record<string, number>> = {
  accepted: 1,
  scheduled: 1,
  queued: 1,
  initiated: 1,
  sending: 2,
  ringing: 2,
  sent: 3,
  "in-progress": 3,
  delivered: 4,
  undelivered: 4,
  failed: 4,
  canceled: 4,
  completed: 4,
  busy: 4,
  "no-answer": 4,
  read: 5,
};

export function isDeliveryStatus(status: string): boolean {
  return Object.hasOwn(DELIVERY_RANK, status);
}
