export const PURPOSES = ["registration", "login", "password_reset"] as const;
export type Purpose = (typeof PURPOSES)[number];

export function isPurpose(value: unknown): value is Purpose {
  return typeof value === "string" && (PURPOSES as readonly string[]).includes(value);
}

/** Who a code is for: the user's id, or any object carrying one (`{ id }`), as in the seed's `send_otp(phone, user, purpose)`. */
export type UserRef = string | { id: string };

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
  codeHash: string;
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

export type SendResult =
  | { ok: true; id: string; message: string; expiresAt: Date; resendAfter: Date }
  | {
      ok: false;
      code:
        | "invalid_phone_number"
        | "rate_limited"
        | "provider_rejected"
        | "provider_unavailable"
        | "destination_not_allowed"
        | "budget_exceeded"
        | "channel_unavailable"
        | "invalid_email";
      message: string;
      /** The record of the attempt, kept for the audit trail, when one was written. */
      id: string | null;
      /** Seconds to wait before trying again, when that helps. */
      retryAfter?: number;
      /** The provider's own error code (Twilio's 21610…), when the provider refused. */
      providerCode?: string;
      /** HTTP status for provider_unavailable: 502 (failed), 503 (throttled), 504 (timed out). */
      status?: number;
      /** The protection rule that refused the send (`number`, `ip`, `country`, `budget`…). */
      rule?: string;
    };

export type VerifyResult =
  | { ok: true; message: string; verifiedAt: Date }
  | { ok: false; code: "otp_invalid"; message: string; attemptsRemaining: number }
  | { ok: false; code: "otp_expired" | "otp_not_found" | "invalid_phone_number" | "invalid_email"; message: string }
  | { ok: false; code: "otp_attempts_exceeded"; message: string; retryAfter: number }
  | { ok: false; code: "rate_limited"; message: string; retryAfter: number; rule: string };
