export {
  type ChallengeKey,
  type ChallengeState,
  isPurpose,
  LIVE_STATUSES,
  type OtpRecord,
  type OtpStatus,
  PURPOSES,
  type Purpose,
} from "../records.js";

/** Who a code is for: the user's id, or any object carrying one (`{ id }`), as in the seed's `send_otp(phone, user, purpose)`. */
export type UserRef = string | { id: string };

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
