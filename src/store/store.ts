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
  /** Test numbers: no cooldown and no lock. */
  exempt: boolean;
  /** How many of the challenge's newest codes stay live; older live ones are superseded. */
  keepLive: number;
}

export interface VerifyRule {
  maxAttempts: number;
  /** How many of the challenge's newest live codes are compared. */
  keepLive: number;
  /** Registration: the verified number becomes the user's, in the same transaction. */
  markPhoneVerified: boolean;
}

/** What a verification try needs of a live code. */
export interface LiveCode {
  id: string;
  codeHash: string;
  expiresAt: number;
}

export type VerifyTry =
  /** No try was counted: the budget is spent, the challenge is over, or there is none. */
  | { kind: "refused" }
  /** The try was counted and no code matched; `codes` are the live ones compared, expired ones included. */
  | { kind: "mismatch"; attempts: number; codes: LiveCode[] }
  | { kind: "verified"; id: string };

export interface DeliveryUpdate {
  status: Extract<OtpStatus, "pending" | "sent" | "failed">;
  providerMessageId?: string | null;
  providerErrorCode?: string | null;
  deliveryStatus?: string | null;
}

/**
 * Everything the core keeps. Every method is one atomic step on the database; the ones the security
 * guarantees rest on (beginSend, tryVerify) say what callers must gate on.
 */
export interface Store {
  readonly dialect: "sqlite" | "postgres";
  /** Applies pending migrations; resolves the names of those it ran. */
  migrate(): Promise<string[]>;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;

  /**
   * Opens a send on the record's challenge when its cooldown is over and it is not locked, and stores
   * the record, in one transaction whose first statement is a conditional upsert, so two parallel sends
   * cannot both pass the cooldown. A challenge whose codes have all expired, or that was verified or
   * locked, starts again with no tries spent; its live codes beyond the newest `keepLive` are superseded.
   * Resolves null when the send is refused: nothing is stored and callers must send nothing.
   */
  beginSend(record: OtpRecord, now: number, rule: SendRule): Promise<{ attempts: number; sendCount: number } | null>;
  getChallenge(key: ChallengeKey): Promise<ChallengeState | null>;
  /**
   * One verification try, in one transaction. The try is counted against the challenge first (parallel
   * guesses cannot outrun the budget); then `match` picks among the newest live codes; a picked code is
   * marked verified with an UPDATE guarded by its status and expiry, the challenge closes and its other
   * live codes are retired, so a code verifies at most once and a challenge at most once.
   */
  tryVerify(key: ChallengeKey, now: number, rule: VerifyRule, match: (codes: LiveCode[]) => LiveCode | undefined): Promise<VerifyTry>;
  /** Ends the challenge after too many wrong tries: its live codes die; no send until `until`. */
  lockChallenge(key: ChallengeKey, until: number, now: number): Promise<void>;
  updateDelivery(id: string, update: DeliveryUpdate, now: number): Promise<void>;
  findCode(id: string): Promise<OtpRecord | null>;

  /** Resolves null when the username or email is taken (the field that clashed is returned instead). */
  createUser(user: NewUser): Promise<UserRecord | { conflict: "username" | "email" }>;
  findUserById(id: string): Promise<UserRecord | null>;
  findUserByLogin(login: { username?: string; email?: string }): Promise<UserRecord | null>;
  /** Sets the user's number and marks it verified; resolves false when the user is not local. */
  markPhoneVerified(userId: string, phoneNumber: string, now: number): Promise<boolean>;
}
