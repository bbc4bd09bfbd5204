/** What vericode keeps of codes and challenges: the shapes the store, the core and the channels share (a leaf module). */

export const PURPOSES = ["registration", "login", "password_reset"] as const;
export type Purpose = (typeof PURPOSES)[number];

export function isPurpose(value: unknown): value is Purpose {
  return typeof value === "string" && (PURPOSES as readonly string[]).includes(value);
}

/**
 * The purpose under which a Twilio Verify v2 service's sends are kept with the codes (and reported): its
 * own, beside PURPOSES, so the reports tell each service apart.
 */
export function verifyPurpose(serviceSid: string): string {
  return `verify:${serviceSid}`;
}

/** A key of the codes' HMAC (OTP_SECRETS): its id is stored beside each MAC made under it. */
export interface OtpKey {
  id: string;
  secret: string;
}

/** The id of the one key OTP_SECRET gives, and of the codes stored before keys had ids. */
export const DEFAULT_KEY_ID = "default";

/** A code's life: `pending` until the provider answers, then `sent` or `failed`; `verified`, `superseded` or `locked` at its end. */
export type OtpStatus = "pending" | "sent" | "failed" | "verified" | "superseded" | "locked";

/** Codes in these states can still verify (until their own expiry). */
export const LIVE_STATUSES: readonly OtpStatus[] = ["pending", "sent"];

/** The thing tries and sends are counted against: one number, one purpose, one user (NIST SP 800-63B-4). */
export interface ChallengeKey {
  phoneNumber: string;
  purpose: Purpose;
  userId: string;
}

export interface OtpRecord extends ChallengeKey {
  id: string;
  /** The code's MAC; null once the code can no longer verify (consumed, superseded, locked, expired). */
  codeHash: string | null;
  /** The id of the key (OTP_SECRETS) the MAC was made under. */
  keyId: string;
  channel: string;
  status: OtpStatus;
  createdAt: number;
  expiresAt: number;
  verifiedAt: number | null;
  providerMessageId: string | null;
  providerErrorCode: string | null;
  deliveryStatus: string | null;
  /** ISO country of the number (or `+<calling code>` for a non-geographic one). */
  country: string | null;
  /** What the message cost, in millionths of a US dollar: the estimate until the provider's price is known. */
  priceMicros: number | null;
  priceFinal: boolean;
  /** The channel that failed first when CHANNEL_FALLBACK sent the code another way. */
  fallbackFrom: string | null;
}

export interface ChallengeState {
  attempts: number;
  sendCount: number;
  lastSentAt: number;
  expiresAt: number;
  lockedUntil: number | null;
  verifiedAt: number | null;
}

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
