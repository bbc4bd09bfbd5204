import { DELIVERY_RANK } from "../records.js";

export { DELIVERY_RANK };

/** Where Twilio posts status callbacks: PUBLIC_BASE_URL + this path. */
export const TWILIO_STATUS_PATH = "/api/v1/messaging/twilio/status/";

export function isDeliveryStatus(status: string): boolean {
  return Object.hasOwn(DELIVERY_RANK, status);
}
