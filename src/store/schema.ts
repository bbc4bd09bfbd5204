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
  /** HMAC-SHA256 of the code, bound to number, purpose and user; never the code itself. */
  code_hash: string;
  channel: string;
  status: string;
  created_at: number;
  expires_at: number;
  verified_at: number | null;
  provider_message_id: string | null;
  provider_error_code: string | null;
  delivery_status: string | null;
  updated_at: number;
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

export interface Database {
  users: UsersTable;
  otp_codes: OtpCodesTable;
  otp_challenges: OtpChallengesTable;
}
