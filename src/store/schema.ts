import type { ColumnType } from "kysely";

/** Table shapes as the drivers see them (after the dialect's type conversion): times are epoch milliseconds. */
export interface UsersTable {
  id: string;
  username: string | null;
  email: string | null;
  password_hash: string;
  phone_number: string | null;
  /** 0 or 1: one representation on both dialects. */
  phone_verified: number;
  role: string;
  token_version: number;
  created_at: number;
  updated_at: number;
}

export interface OtpCodesTable {
  id: string;
  user_id: string;
  phone_number: string;
  purpose: string;
  /**
   * HMAC-SHA256 of the code, bound to number, purpose and user; never the code itself. Null once the code
   * can no longer verify (consumed, superseded, locked, expired).
   */
  code_hash: string | null;
  channel: string;
  status: string;
  created_at: number;
  expires_at: number;
  verified_at: number | null;
  provider_message_id: string | null;
  provider_error_code: string | null;
  delivery_status: string | null;
  updated_at: number;
  country: string | null;
  /** Millionths of a US dollar: the estimate until the provider's price is known (`price_final` 1). */
  price_micros: number | null;
  price_final: number;
  fallback_from: string | null;
  /** The id of the OTP_SECRETS key the MAC was made under; null: the key of OTP_SECRET (`default`). */
  key_id: string | null;
}

export interface RateLimitsTable {
  key: string;
  count: number;
  reset_at: number;
  /** The limit the row was inserted under (the multi-bucket take on SQLite). */
  lim: ColumnType<number | null, number | null | undefined, number | null>;
}

export interface SmsBudgetTable {
  period: string;
  spent_micros: number;
  reserved_micros: number;
  updated_at: number;
}

export interface OtpRefusalsTable {
  id: string;
  created_at: number;
  rule: string;
  code: string;
  purpose: string;
  user_id: string;
  country: string | null;
  phone_prefix: string | null;
  ip: string | null;
}

export interface OtpChallengesTable {
  phone_number: string;
  purpose: string;
  user_id: string;
  attempts: number;
  send_count: number;
  last_sent_at: number;
  expires_at: number;
  locked_until: number | null;
  verified_at: number | null;
  created_at: number;
}

/** One UTC day's figures per purpose, channel and country (country '' when unknown). */
export interface ReportDaysTable {
  day: number;
  purpose: string;
  channel: string;
  country: string;
  sent: number;
  delivered: number;
  failed: number;
  verified: number;
  expired: number;
  locked: number;
  spend_micros: number;
  /** JSON {"<seconds from send to verification>": count}. */
  ttv: string;
}

export interface ReportDayFailuresTable {
  day: number;
  purpose: string;
  channel: string;
  country: string;
  error_code: string;
  n: number;
}

export interface ReportDayRefusalsTable {
  day: number;
  purpose: string;
  country: string;
  rule: string;
  n: number;
}

export interface ReportRollupsTable {
  day: number;
  created_at: number;
}

export interface IdempotencyKeysTable {
  /** Who may reuse the key: the route and the caller (token subject, or client address). */
  scope: string;
  key: string;
  /** SHA-256 of the first request's body: the same key with another body is refused. */
  fingerprint: string;
  /** `in_flight` until the first request has answered, then `done`. */
  state: string;
  status: number | null;
  content_type: string | null;
  body: string | null;
  created_at: number;
  expires_at: number;
  /** An `in_flight` key whose request died is free again after this. */
  lease_until: number;
}

/** A /v2 service (Twilio Verify's Service): `settings` holds the rest of its fields as JSON. */
export interface VerifyServicesTable {
  sid: string;
  friendly_name: string;
  code_length: number;
  settings: string;
  created_at: number;
  updated_at: number;
}

/** A /v2 verification: no code, no MAC; the code is derived from the key `key_id` names and `nonce`. */
export interface VerificationsTable {
  sid: string;
  service_sid: string;
  to_addr: string;
  /** `to_addr` while pending, null after: unique per service. */
  pending_to: string | null;
  channel: string;
  /** `pending`, `approved`, `canceled`, `expired` or `max_attempts_reached`. */
  status: string;
  nonce: string;
  key_id: string;
  code_length: number;
  locale: string | null;
  send_count: number;
  check_count: number;
  created_at: number;
  updated_at: number;
  expires_at: number;
}

export interface VerifyRateLimitsTable {
  sid: string;
  service_sid: string;
  unique_name: string;
  description: string | null;
  created_at: number;
  updated_at: number;
}

export interface VerifyBucketsTable {
  sid: string;
  rate_limit_sid: string;
  service_sid: string;
  max: number;
  /** Seconds. */
  interval: number;
  created_at: number;
  updated_at: number;
}

export interface Database {
  users: UsersTable;
  otp_codes: OtpCodesTable;
  otp_challenges: OtpChallengesTable;
  rate_limits: RateLimitsTable;
  sms_budget: SmsBudgetTable;
  otp_refusals: OtpRefusalsTable;
  report_days: ReportDaysTable;
  report_day_failures: ReportDayFailuresTable;
  report_day_refusals: ReportDayRefusalsTable;
  report_rollups: ReportRollupsTable;
  idempotency_keys: IdempotencyKeysTable;
  verify_services: VerifyServicesTable;
  verifications: VerificationsTable;
  verify_rate_limits: VerifyRateLimitsTable;
  verify_buckets: VerifyBucketsTable;
}
