import type { ChallengeKey, ChallengeState, OtpRecord, OtpStatus } from "../otp/types.js";
import type { Step } from "./prepared.js";

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
  /**
   * The wait after a send: `baseCooldownMs`, doubled with each send of a live challenge up to
   * `maxCooldownMs` (reached at the `sendsToMax`-th send); a challenge that is over waits the base.
   */
  baseCooldownMs: number;
  maxCooldownMs: number;
  sendsToMax: number;
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
  /** Statements to run in the same transaction when the code is verified (the breaker's count). */
  onVerified?: Prelude;
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
  /** CHANNEL_FALLBACK sent the code through another channel than the one asked for. */
  channel?: string;
  fallbackFrom?: string;
}

/**
 * Statements that run first in the same transaction as a send or a try (the SQL limiter's buckets on
 * SQLite): one commit for both, and when the send is refused or the prelude throws, neither happened.
 */
export type Prelude = () => Step<void>;

/** A send refused by a protection rule, as the audit trail keeps it. */
export interface RefusalRecord {
  id: string;
  createdAt: number;
  /** The rule that refused: `number`, `ip`, `country`, `budget`… */
  rule: string;
  /** The error code answered: `rate_limited`, `destination_not_allowed`, `budget_exceeded`. */
  code: string;
  purpose: string;
  userId: string;
  country: string | null;
  /** The number without its last four digits. */
  phonePrefix: string | null;
  ip: string | null;
}

/** The end of a budget reservation: what was really spent, and whether it is the provider's own figure. */
export interface BudgetSettlement {
  period: string;
  reservedMicros: number;
  spentMicros: number;
  /** The record whose price this is. */
  codeId: string;
  final: boolean;
}

/**
 * Everything the core keeps. Every method is one atomic step on the database; the ones the security
 * guarantees rest on (beginSend, tryVerify) say what callers must gate on.
 */
export interface PurgeResult {
  codes: number;
  refusals: number;
  challenges: number;
}

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
  beginSend(record: OtpRecord, now: number, rule: SendRule, prelude?: Prelude): Promise<{ attempts: number; sendCount: number } | null>;
  getChallenge(key: ChallengeKey): Promise<ChallengeState | null>;
  /**
   * One verification try, in one transaction. The try is counted against the challenge first (parallel
   * guesses cannot outrun the budget); then `match` picks among the newest live codes; a picked code is
   * marked verified with an UPDATE guarded by its status and expiry, the challenge closes and its other
   * live codes are retired, so a code verifies at most once and a challenge at most once.
   */
  tryVerify(
    key: ChallengeKey,
    now: number,
    rule: VerifyRule,
    match: (codes: LiveCode[]) => LiveCode | undefined,
    prelude?: Prelude,
  ): Promise<VerifyTry>;
  /** Ends the challenge after too many wrong tries: its live codes die; no send until `until`. */
  lockChallenge(key: ChallengeKey, until: number, now: number): Promise<void>;
  updateDelivery(id: string, update: DeliveryUpdate, now: number): Promise<void>;
  /**
   * A provider's status callback for its message id: the delivery status moves forward only. Resolves
   * whether the record changed (false for a replay, a late callback or an unknown message).
   */
  recordDeliveryStatus(providerMessageId: string, status: string, errorCode: string | null, now: number): Promise<boolean>;
  findCode(id: string): Promise<OtpRecord | null>;

  /** Reserves `micros` of the period's budget unless spent + reserved would pass `capMicros`: one atomic step. */
  reserveBudget(period: string, micros: number, capMicros: number, now: number): Promise<boolean>;
  /** Ends a reservation: the reserved amount leaves, the spent amount (0 when nothing went out) is added. */
  settleBudget(settlement: BudgetSettlement, now: number): Promise<void>;
  /** Spent and reserved so far in the period. */
  budget(period: string): Promise<{ spentMicros: number; reservedMicros: number }>;
  recordRefusal(refusal: RefusalRecord): Promise<void>;

  /** Resolves null when the username or email is taken (the field that clashed is returned instead). */
  createUser(user: NewUser): Promise<UserRecord | { conflict: "username" | "email" }>;
  findUserById(id: string): Promise<UserRecord | null>;
  /**
   * Deletes codes, refusals and challenges created before `before`, in batches (oldest first), so that
   * sends are never held up for long. Idempotent; several instances may run it at once.
   */
  purge(before: number, options?: { batch?: number }): Promise<PurgeResult>;
  /** Sets the role of the user with this username or email; null when there is none. */
  setRole(login: string, role: string, now: number): Promise<UserRecord | null>;
  findUserByLogin(login: { username?: string; email?: string }): Promise<UserRecord | null>;
  /**
   * Sets the user's number and marks it verified, and unmarks it on any other account (a number is one
   * account's); resolves false when the user is not local.
   */
  markPhoneVerified(userId: string, phoneNumber: string, now: number): Promise<boolean>;
  /** The account whose verified number this is (a number is verified on one account at a time). */
  findUserByVerifiedPhone(phoneNumber: string): Promise<UserRecord | null>;
  /** Sets a new password hash and revokes every refresh token issued so far (token_version + 1). */
  setPassword(userId: string, passwordHash: string, now: number): Promise<boolean>;
}
