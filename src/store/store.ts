import type { ChallengeKey, ChallengeState, OtpRecord, OtpStatus } from "../otp/types.js";

export interface UserRecord {
  id: string;
  username: string | null;
  email: string | null;
  passwordHash: string;
  phoneNumber: string | null;
  phoneVerified: boolean;
  role: string;
  tokenVersion: number;
  createdAt: number;
}

export type NewUser = Omit<UserRecord, "phoneVerified" | "role" | "tokenVersion">;

export interface SendRule {
  /** Earliest previous send that still allows this one: sends after `now - cooldownMs` are refused. */
  cooldownMs: number;
  /** The new code's expiry; the challenge lives at least until then. */
  expiresAt: number;
  /** Test numbers: no cooldown and no lock. */
  exempt: boolean;
}

export interface DeliveryUpdate {
  status: Extract<OtpStatus, "pending" | "sent" | "failed">;
  providerMessageId?: string | null;
  providerErrorCode?: string | null;
  deliveryStatus?: string | null;
}

/**
 * Everything the core keeps. Every method is one atomic step on the database; the ones the security
 * guarantees rest on (beginSend, consumeAttempt, consumeCode) say what callers must gate on.
 */
export interface Store {
  readonly dialect: "sqlite" | "postgres";
  /** Applies pending migrations; resolves the names of those it ran. */
  migrate(): Promise<string[]>;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;

  /**
   * Opens a send on the challenge when its cooldown is over and it is not locked, in one conditional
   * upsert, so two parallel sends cannot both pass the cooldown. A challenge whose codes have all
   * expired, or that was verified or locked, starts again with no tries spent. Resolves null when the
   * send is refused; callers must then send nothing.
   */
  beginSend(key: ChallengeKey, now: number, rule: SendRule): Promise<{ attempts: number; sendCount: number } | null>;
  getChallenge(key: ChallengeKey): Promise<ChallengeState | null>;
  /**
   * Counts one verification try against the challenge before any comparison, so that parallel guesses
   * cannot outrun the budget. Resolves null when the budget is spent, the challenge is over or there is
   * none; callers must stop there.
   */
  consumeAttempt(key: ChallengeKey, now: number, maxAttempts: number): Promise<{ attempts: number } | null>;
  /** Ends the challenge after too many wrong tries: its live codes die; no send until `until`. */
  lockChallenge(key: ChallengeKey, until: number, now: number): Promise<void>;

  /**
   * Stores a new code. When `keepLive` is given, also retires the live codes of its challenge beyond the
   * newest `keepLive` (callers skip it while the challenge has had no more sends than that: nothing to retire).
   */
  insertCode(record: OtpRecord, keepLive: number | null): Promise<void>;
  updateDelivery(id: string, update: DeliveryUpdate, now: number): Promise<void>;
  /** The newest live (pending or sent) codes of the challenge, newest first, expired ones included. */
  liveCodes(key: ChallengeKey, limit: number): Promise<OtpRecord[]>;
  /**
   * Marks the code verified if it is still live and unexpired, with one UPDATE guarded by its status;
   * resolves true for exactly one caller however many race. On success the challenge is closed (and its
   * other live codes retired unless `retireOthers` is false because there are none), so a code verifies
   * at most once and a challenge at most once.
   */
  consumeCode(id: string, key: ChallengeKey, now: number, options?: { retireOthers?: boolean }): Promise<boolean>;
  findCode(id: string): Promise<OtpRecord | null>;

  /** Resolves null when the username or email is taken (the field that clashed is returned instead). */
  createUser(user: NewUser): Promise<UserRecord | { conflict: "username" | "email" }>;
  findUserById(id: string): Promise<UserRecord | null>;
  findUserByLogin(login: { username?: string; email?: string }): Promise<UserRecord | null>;
  /** Sets the user's number and marks it verified; resolves false when the user is not local. */
  markPhoneVerified(userId: string, phoneNumber: string, now: number): Promise<boolean>;
}
