import type { MaintenanceStore } from "../store/store.js";
import type { Analytics } from "./report.js";

const DAY_MS = 86_400_000;

export interface RetentionResult {
  /** Everything created before this time (a UTC midnight) was deleted. */
  before: Date;
  /** Days rolled up first, so that reports keep their figures. */
  rolledUp: number;
  codes: number;
  refusals: number;
  challenges: number;
  /** Expired codes whose MAC was cleared (no offline target left behind; their record stays for reports). */
  macsCleared: number;
  /** Idempotency keys past their 24 hours. */
  idempotencyKeys: number;
}

/**
 * Clears the MAC of every expired code, then deletes the codes, refusals and challenges of the whole UTC
 * days older than `days`, after rolling
 * those days up for the reports (the roll-ups hold no number, user or code). Idempotent, and safe when
 * several instances run it at once: the roll-up of a day is claimed in its own transaction, deletions
 * go by small batches of what is past the cut-off.
 */
export async function applyRetention(
  service: { store: MaintenanceStore; analytics: Analytics },
  days: number,
  now: number,
): Promise<RetentionResult> {
  const before = Math.floor((now - days * DAY_MS) / DAY_MS) * DAY_MS;
  const macsCleared = await service.store.clearExpiredMacs(now);
  const idempotencyKeys = await service.store.dropExpiredIdempotencyKeys(now);
  const rolledUp = await service.analytics.rollUpBefore(before, Math.max(now, before + 2 * DAY_MS));
  const deleted = await service.store.purge(before);
  return { before: new Date(before), rolledUp, ...deleted, macsCleared, idempotencyKeys };
}
