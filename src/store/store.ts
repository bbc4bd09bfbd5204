import type { ChallengeKey, ChallengeState, OtpRecord, OtpStatus } from "../records.js";

/**
 * What the core keeps, split by role: codes (sends, tries, delivery), counters (rate limits), the spend
 * budget, users and maintenance. One class implements them all on SQLite and PostgreSQL (sql-store.ts);
 * every method is one atomic step on the database. Expected outcomes (a refusal, a full bucket, a wrong
 * code) are values; a method throws only for misuse or when the database fails.
 */
export type Store = CodeStore & CounterStore & BudgetStore & UserStore & IdempotencyStore & MaintenanceStore & StoreLifecycle;

/** Where the database is: DATABASE_URL, read (the configuration resolves it to this). */
export type DatabaseLocation = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

export interface StoreLifecycle {
  /** Which database this is, for `/readyz` and logs. Nothing branches on it outside store/. */
  readonly dialect: "sqlite" | "postgres";
  /** Applies pending migrations; resolves the names of those it ran. */
  migrate(): Promise<string[]>;
  /** Throws when the database cannot be reached, or cannot take a write now (SQLite locked by another process). */
  ping(): Promise<void>;
  /** What the database's settings mean for vericode that an operator should change, in words (logged at start). */
  warnings(): Promise<string[]>;
  close(): Promise<void>;
}

// ---- Codes -----------------------------------------------------------------------------------------

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

/** A hold on the spend budget: `micros` of `period`, unless spent + reserved would pass `capMicros`. */
export interface BudgetHold {
  period: string;
  micros: number;
  capMicros: number;
}

/** What a send takes besides opening its challenge, all in the same atomic step. */
export interface SendTake {
  /** One unit from each (the rate limits, when the limiter counts in this store). */
  buckets?: readonly Bucket[];
  /** The budget to reserve. */
  budget?: BudgetHold | null;
}

export type SendOpened =
  | { kind: "opened"; attempts: number; sendCount: number }
  /** A bucket was full: nothing was taken or stored. */
  | { kind: "limited"; rule: string; retryAfterMs: number }
  /** The budget could not take the hold: nothing was taken or stored. */
  | { kind: "over_budget" }
  /** The challenge's cooldown or lock refused the send: nothing was taken or stored. */
  | { kind: "refused"; challenge: ChallengeState | null };

export interface VerifyRule {
  maxAttempts: number;
  /** How many of the challenge's newest live codes are compared. */
  keepLive: number;
  /** Registration: the verified number becomes the user's, in the same transaction. */
  markPhoneVerified: boolean;
}

/** What a try takes or counts besides the try itself, in the same atomic step. */
export interface TryTake {
  /** One unit from each before the try (the rate limits, when the limiter counts in this store). */
  buckets?: readonly Bucket[];
  /** Counters to add to when the code verifies (the conversion breaker's, when it counts in this store). */
  countOnVerified?: { keys: readonly string[]; windowMs: number } | null;
}

/** What a verification try needs of a live code. */
export interface LiveCode {
  id: string;
  codeHash: string;
  /** The key the MAC was made under. */
  keyId: string;
  expiresAt: number;
  channel: string;
}

export type VerifyTry =
  /** A bucket was full: no try was counted. */
  | { kind: "limited"; rule: string; retryAfterMs: number }
  /**
   * No try was counted: the budget is spent, the challenge is over, or there is none (its state says
   * which); `newest` is its newest code, for the audit trail.
   */
  | { kind: "refused"; challenge: ChallengeState | null; newest: { id: string; channel: string } | null }
  /** The try was counted and no code matched; `codes` are the live ones compared, expired ones included. */
  | { kind: "mismatch"; attempts: number; codes: LiveCode[] }
  | { kind: "verified"; id: string; channel: string };

export interface DeliveryUpdate {
  status: Extract<OtpStatus, "pending" | "sent" | "failed">;
  providerMessageId?: string | null;
  providerErrorCode?: string | null;
  deliveryStatus?: string | null;
  /** CHANNEL_FALLBACK sent the code through another channel than the one asked for. */
  channel?: string;
  fallbackFrom?: string;
}

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

export interface CodeStore {
  /**
   * Opens a send on the record's challenge and stores the record, in one atomic step: first one unit
   * from each of `take.buckets` and the budget's hold, then a conditional upsert of the challenge that
   * passes only when its cooldown is over and it is not locked, so two parallel sends cannot both pass.
   * A challenge whose codes have all expired, or that was verified or locked, starts again with no tries
   * spent; its live codes beyond the newest `keepLive` are superseded. Anything but `opened` means nothing
   * was taken or stored: callers must send nothing.
   */
  beginSend(record: OtpRecord, now: number, rule: SendRule, take?: SendTake): Promise<SendOpened>;
  getChallenge(key: ChallengeKey): Promise<ChallengeState | null>;
  /**
   * One verification try, in one atomic step. The try is counted against the challenge first (parallel
   * guesses cannot outrun the budget); then `match` picks among the newest live codes; a picked code is
   * marked verified with an UPDATE guarded by its status and expiry, the challenge closes and its other
   * live codes are retired, so a code verifies at most once and a challenge at most once.
   */
  tryVerify(
    key: ChallengeKey,
    now: number,
    rule: VerifyRule,
    match: (codes: LiveCode[]) => LiveCode | undefined,
    take?: TryTake,
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
  recordRefusal(refusal: RefusalRecord): Promise<void>;
}

// ---- Counters (the SQL limiter's) -----------------------------------------------------------------

/**
 * A rate limit's counter: a fixed window that starts at its first hit, at most `limit` units until it
 * ends, then a fresh window.
 */
export interface Bucket {
  /** The counter's name: `number:+50688887777`, `ip:203.0.113.9`… */
  readonly key: string;
  readonly limit: number;
  readonly windowMs: number;
  /** The rule a refusal is reported under (`number`, `ip`…). */
  readonly rule: string;
}

export type Consumed = { ok: true } | { ok: false; rule: string; retryAfterMs: number };

export interface Counter {
  count: number;
  /** Epoch ms when the window ends; the counter reads 0 from then on. */
  resetAt: number;
}

export interface CounterStore {
  /** Takes one unit from every bucket, or none when any is full: says which rule refused and for how long. */
  takeUnits(buckets: readonly Bucket[], now: number): Promise<Consumed>;
  /** Gives back the unit a take took (the send it allowed was refused further on). */
  giveBackUnits(buckets: readonly Bucket[], now: number): Promise<void>;
  /** Counts without a limit; a new window lasts `windowMs`. Written with this turn's other counts. */
  addCounts(keys: readonly string[], windowMs: number, now: number): Promise<void>;
  /** The live counters of `keys` (absent or ended ones read as zero). */
  readCounters(keys: readonly string[], now: number): Promise<Counter[]>;
}

// ---- Budget ----------------------------------------------------------------------------------------

/** The end of a budget reservation: what was really spent, and whether it is the provider's own figure. */
export interface BudgetSettlement {
  period: string;
  reservedMicros: number;
  spentMicros: number;
  /** The record whose price this is. */
  codeId: string;
  final: boolean;
}

export interface BudgetStore {
  /** Reserves the hold unless spent + reserved would pass its cap: one atomic step. */
  reserveBudget(hold: BudgetHold, now: number): Promise<boolean>;
  /** Ends a reservation: the reserved amount leaves, the spent amount (0 when nothing went out) is added. */
  settleBudget(settlement: BudgetSettlement, now: number): Promise<void>;
  /** Spent and reserved so far in the period. */
  budget(period: string): Promise<{ spentMicros: number; reservedMicros: number }>;
}

// ---- Users -----------------------------------------------------------------------------------------

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

export interface UserStore {
  /** Resolves the field that clashed instead when the username or email is taken. */
  createUser(user: NewUser): Promise<UserRecord | { conflict: "username" | "email" }>;
  findUserById(id: string): Promise<UserRecord | null>;
  findUserByLogin(login: { username?: string; email?: string }): Promise<UserRecord | null>;
  /** Sets the role of the user with this username or email; null when there is none. */
  setRole(login: string, role: string, now: number): Promise<UserRecord | null>;
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

// ---- Idempotency keys ------------------------------------------------------------------------------

/** A request's key, as the caller scoped it, and its fingerprint (the body's digest). */
export interface IdempotentRequest {
  scope: string;
  key: string;
  fingerprint: string;
}

/** A stored answer, replayed to the retries of its request. */
export interface StoredAnswer {
  status: number;
  contentType: string;
  body: string;
}

export type IdempotencyClaim =
  /** The key is this request's: run it, then `completeIdempotencyKey` or `releaseIdempotencyKey`. */
  | { kind: "claimed" }
  /** The first request with this key is still running. */
  | { kind: "in_flight" }
  /** The key was used with another body. */
  | { kind: "mismatch" }
  /** The first request answered this: answer it again. */
  | { kind: "done"; answer: StoredAnswer };

export interface IdempotencyStore {
  /**
   * Claims the key for this request in one atomic step, unless it is held: by a request that is still
   * running (its lease not over), or by an answer given within `ttlMs`. Any number of instances may race.
   */
  claimIdempotencyKey(request: IdempotentRequest, now: number, options: { ttlMs: number; leaseMs: number }): Promise<IdempotencyClaim>;
  /** Keeps the claimed request's answer for its retries. */
  completeIdempotencyKey(request: IdempotentRequest, answer: StoredAnswer): Promise<void>;
  /** Frees the claimed key (the request did not run to a result worth replaying: a 429 or a 5xx). */
  releaseIdempotencyKey(request: IdempotentRequest): Promise<void>;
}

// ---- Maintenance -----------------------------------------------------------------------------------

export interface PurgeResult {
  codes: number;
  refusals: number;
  challenges: number;
}

export interface MaintenanceStore {
  /**
   * Clears the MAC of every code whose lifetime ended before `now` (consumed, superseded and locked codes
   * lose theirs when their status changes), in small batches; resolves how many it cleared.
   */
  clearExpiredMacs(now: number, options?: { batch?: number }): Promise<number>;
  /** Deletes the idempotency keys whose time is over, in small batches; resolves how many. */
  dropExpiredIdempotencyKeys(now: number, options?: { batch?: number }): Promise<number>;
  /**
   * Deletes codes, refusals and challenges created before `before`, in small batches (oldest first), each
   * its own short transaction, so that a running service never waits long on it. Idempotent; several
   * instances may run it at once.
   */
  purge(before: number, options?: { batch?: number }): Promise<PurgeResult>;
}
