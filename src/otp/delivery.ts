import type { DeliveryOutcome } from "../channels/channel.js";
import { DELIVERY_RANK } from "../records.js";
import type { DeliveryUpdate } from "../store/store.js";

export { DELIVERY_RANK };

/** Where Twilio posts status callbacks: PUBLIC_BASE_URL + this path. */
export const TWILIO_STATUS_PATH = "/api/v1/messaging/twilio/status/";

export function isDeliveryStatus(status: string): boolean {
  return Object.hasOwn(DELIVERY_RANK, status);
}

/**
 * What a provider's answer makes of a code's record: sent, with the provider's id and status; pending
 * after a timeout (the message may have gone out, so the code stays valid); failed otherwise.
 */
export function deliveryUpdate(outcome: DeliveryOutcome): DeliveryUpdate {
  if (outcome.ok) {
    return {
      status: "sent",
      deliveryStatus: outcome.deliveryStatus,
      ...(outcome.providerMessageId === null ? {} : { providerMessageId: outcome.providerMessageId }),
    };
  }
  if (outcome.kind === "timeout") return { status: "pending", providerErrorCode: outcome.providerCode ?? "timeout" };
  return { status: "failed", providerErrorCode: outcome.providerCode, deliveryStatus: "failed" };
}

/**
 * What a send spent, for the budget: the provider's price when it said one, else the estimate held; a
 * timed-out message may have gone out and counts; a refused or failed one cost nothing (null).
 */
export function spentOn(outcome: DeliveryOutcome, estimateMicros: number): { micros: number; final: boolean } | null {
  if (outcome.ok && outcome.priceMicros != null) return { micros: outcome.priceMicros, final: true };
  return outcome.ok || outcome.kind === "timeout" ? { micros: estimateMicros, final: false } : null;
}
