import { type Kysely, type Selectable, sql } from "kysely";
import { verifyPurpose } from "../records.js";
import { type GroupCommit, once, type Runner, type Statement, type Step, statement } from "./prepared.js";
import type { Database, VerificationsTable, VerifyBucketsTable, VerifyRateLimitsTable, VerifyServicesTable } from "./schema.js";
import type { Bucket, Consumed } from "./store.js";
import { attemptValues, type OpenWithAttempt, type VerifyStatements, verifyStatements } from "./verify-statements.js";

/** A /v2 service as stored: its friendly name, code length, and the rest of its settings (JSON-able). */
export interface VerifyServiceRecord {
  sid: string;
  friendlyName: string;
  codeLength: number;
  settings: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
}

export type VerificationStatus = "pending" | "approved" | "canceled" | "expired" | "max_attempts_reached";

export interface VerificationRecord {
  sid: string;
  serviceSid: string;
  to: string;
  channel: string;
  /** As stored: a `pending` one whose `expiresAt` has passed is over all the same (the store marks it `expired` when it meets it). */
  status: VerificationStatus;
  /** The random value the code is derived from, with the key `keyId` names. */
  nonce: string;
  keyId: string;
  codeLength: number;
  locale: string | null;
  sendCount: number;
  checkCount: number;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
}

/** One send of a verification's code: a row of otp_codes. */
export interface SendAttempt {
  sid: string;
  channel: string;
  createdAt: number;
}

/** The otp_codes row a send attempt writes (delivery, price and analytics follow it like any code's). */
export interface AttemptRow {
  sid: string;
  channel: string;
  country: string | null;
  priceMicros: number | null;
}

export interface StartInput {
  serviceSid: string;
  to: string;
  channel: string;
  now: number;
  /** The new verification's, used when none is pending for this address. */
  fresh: { sid: string; nonce: string; keyId: string; codeLength: number; locale: string | null; expiresAt: number };
  maxSends: number;
  attempt: AttemptRow;
  /**
   * Units the store takes with the send, all or nothing (Protection.admitAppSend's `take`): when a bucket
   * is full the start is `limited` and nothing is stored; when no send opens they go back.
   */
  take: readonly Bucket[];
}

export type Started =
  /** A send was opened: on a new verification (`sendCount` 1) or on the pending one. */
  | { kind: "started"; verification: VerificationRecord }
  /** The pending verification has had `maxSends` sends: nothing was stored. */
  | { kind: "max_sends"; verification: VerificationRecord }
  /** A bucket of `take` had no room: nothing was taken or stored. */
  | { kind: "limited"; rule: string; retryAfterMs: number };

/** Which verification a check is for: the pending one of an address, or one by its sid. */
export type CheckTarget = { to: string } | { sid: string };

export type Checked =
  /** No pending verification (never, or approved, canceled, expired, out of checks); `known` when found by sid. */
  | { kind: "not_found"; known: VerificationRecord | null }
  /** Its checks were spent: it is over now (`max_attempts_reached`). */
  | { kind: "max_checks"; verification: VerificationRecord }
  | { kind: "mismatch"; verification: VerificationRecord }
  | { kind: "approved"; verification: VerificationRecord }
  /** A bucket of the check's `take` had no room: nothing was counted. */
  | { kind: "limited"; rule: string; retryAfterMs: number };

export interface RateLimitRecord {
  sid: string;
  serviceSid: string;
  uniqueName: string;
  description: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface BucketRecord {
  sid: string;
  rateLimitSid: string;
  serviceSid: string;
  max: number;
  /** Seconds. */
  interval: number;
  createdAt: number;
  updatedAt: number;
}

/** A page of a list, oldest first; `more` when a row follows it. */
export interface Page<T> {
  items: T[];
  more: boolean;
}

/**
 * What the /v2 API keeps. Every method is one atomic step; a start and a check are safe for any number
 * of instances racing on one address or one verification.
 */
export interface VerifyStore {
  createService(service: VerifyServiceRecord): Promise<void>;
  getService(sid: string): Promise<VerifyServiceRecord | null>;
  listServices(page: { offset: number; size: number }): Promise<Page<VerifyServiceRecord>>;
  /** Resolves false when there is no such service. */
  updateService(service: VerifyServiceRecord): Promise<boolean>;
  /** Deletes the service, its rate limits and buckets; its verifications end (`canceled`). */
  deleteService(sid: string, now: number): Promise<boolean>;

  /**
   * Opens a send: on the service's pending verification for `to` when there is one that has time left and
   * fewer than `maxSends` sends, else on a new one (an expired pending one is marked `expired` first); the
   * attempt's otp_codes row in the same step.
   */
  startVerification(input: StartInput): Promise<Started>;
  getVerification(serviceSid: string, sid: string): Promise<VerificationRecord | null>;
  sendAttempts(verification: VerificationRecord): Promise<SendAttempt[]>;
  /**
   * One check, in one atomic step: counted first (at most `maxChecks`; the one after ends the
   * verification), then `matches` decides; a match approves it, guarded by its status, so one right code
   * approves a verification once however many instances check it at the same time. `take`'s units (the
   * try limit, Protection.admitAppTry's `take`) are taken first, whatever the check then finds; when a
   * bucket has no room the check is `limited` and nothing else happens.
   */
  checkVerification(
    serviceSid: string,
    target: CheckTarget,
    now: number,
    maxChecks: number,
    matches: (verification: VerificationRecord) => boolean,
    take?: readonly Bucket[],
  ): Promise<Checked>;
  /** Ends a pending verification as `approved` or `canceled`; null when none is pending under this sid. */
  endVerification(serviceSid: string, sid: string, status: "approved" | "canceled", now: number): Promise<VerificationRecord | null>;

  createRateLimit(limit: RateLimitRecord): Promise<"created" | "duplicate">;
  getRateLimit(serviceSid: string, sid: string): Promise<RateLimitRecord | null>;
  listRateLimits(serviceSid: string, page: { offset: number; size: number }): Promise<Page<RateLimitRecord>>;
  updateRateLimit(serviceSid: string, sid: string, description: string | null, now: number): Promise<RateLimitRecord | null>;
  deleteRateLimit(serviceSid: string, sid: string): Promise<boolean>;
  createBucket(bucket: BucketRecord): Promise<"created" | "duplicate">;
  getBucket(rateLimitSid: string, sid: string): Promise<BucketRecord | null>;
  listBuckets(rateLimitSid: string, page: { offset: number; size: number }): Promise<Page<BucketRecord>>;
  updateBucket(
    rateLimitSid: string,
    sid: string,
    change: { max?: number; interval?: number },
    now: number,
  ): Promise<BucketRecord | null | "duplicate">;
  deleteBucket(rateLimitSid: string, sid: string): Promise<boolean>;
  /** The buckets of the service's rate limits named in `names`, with their limit's unique name. */
  bucketsOf(serviceSid: string, names: readonly string[]): Promise<(BucketRecord & { uniqueName: string })[]>;
  /** Deletes the verifications created before `before`, in batches; resolves how many. */
  purgeVerifications(before: number, batch: number): Promise<number>;
}

/** What VerifyHotPath.open did. */
export type Opened =
  | { kind: "taken"; row: Selectable<VerificationsTable> | null }
  | { kind: "limited"; rule: string; retryAfterMs: number };

/** The store's limiter counters (SqlStore.takeUnits and giveBackUnits): a /v2 start's `take`. */
export interface Units {
  take(buckets: readonly Bucket[], now: number): Promise<Consumed>;
  giveBack(buckets: readonly Bucket[], now: number): Promise<void>;
  /** The units, then `step`, in one transaction where that costs nothing more (DialectAdapter.withUnits). */
  withUnits<T>(buckets: readonly Bucket[], now: number, step: () => Step<T>): Promise<T | Extract<Consumed, { ok: false }>>;
}

/** A check's common case (VerifyHotPath.checkOnce): its units refused, or the verification as counted (null: none). */
export type CheckedOnce =
  | { kind: "limited"; rule: string; retryAfterMs: number }
  | { kind: "checked"; row: Selectable<VerificationsTable> | null };

/** A check counted on a verification read before: `approve` 1 when its code matched (see VerifyHotPath.check). */
export interface CheckValues {
  sid: string;
  now: number;
  maxChecks: number;
  approve: number;
  /** The verification's service's purpose (`verifyPurpose`): where its send attempts are. */
  purpose: string;
}

/**
 * The statements of a start's and a check's common case. One at a time here (SQLite, where a statement
 * costs no round trip, and transactions never interleave); batched per turn of the event loop on
 * PostgreSQL (postgres/verify-batch.ts).
 */
export interface VerifyHotPath {
  /**
   * `take`'s units, then `open` and, when it opened one, the send attempt's row: the verification, or null
   * (out of sends or of time: the units stay taken), or `limited` (a bucket had no room: nothing changed).
   */
  open(values: OpenWithAttempt, take: readonly Bucket[]): Promise<Opened>;
  /**
   * A check's common case: `take`'s units (the try limit: they stay taken whatever the check finds, as a
   * native try's do); the pending verification of an address (or one by sid) read without a lock;
   * `decide` says how to count it (null: it cannot be checked, and nothing is written); then `checkOnce`
   * and, when it approved, the newest send attempt marked verified. `limited` when a bucket had no room;
   * else the verification as counted, or null (none, not checkable, or changed between the read and the
   * write).
   */
  checkOnce(
    service: string,
    target: CheckTarget,
    now: number,
    decide: (row: Selectable<VerificationsTable>) => CheckValues | null,
    take: readonly Bucket[],
  ): Promise<CheckedOnce>;
}

class OneAtATime implements VerifyHotPath {
  readonly #runner: Runner;
  readonly #q: VerifyStatements;
  readonly #units: Units;

  constructor(runner: Runner, q: VerifyStatements, units: Units) {
    this.#runner = runner;
    this.#q = q;
    this.#units = units;
  }

  async open(values: OpenWithAttempt, take: readonly Bucket[]): Promise<Opened> {
    const consumed = await this.#units.take(take, values.now);
    if (!consumed.ok) return { kind: "limited", rule: consumed.rule, retryAfterMs: consumed.retryAfterMs };
    const q = this.#q;
    const row = await this.#runner
      .transaction(() => openInProcessStep(q, values))
      .catch(async (error: unknown) => {
        await this.#units.giveBack(take, values.now).catch(() => {});
        throw error;
      });
    return { kind: "taken", row };
  }

  /** One transaction: in process, it costs no more than its statements, and the mark commits with the approval. */
  async checkOnce(
    service: string,
    target: CheckTarget,
    now: number,
    decide: (row: Selectable<VerificationsTable>) => CheckValues | null,
    take: readonly Bucket[],
  ): Promise<CheckedOnce> {
    const q = this.#q;
    const find = "to" in target ? statement(q.pendingOf, { service, to: target.to }) : statement(q.bySid, { service, sid: target.sid });
    const checked = await this.#units.withUnits(take, now, () => checkStep(q, find, decide));
    if (checked !== null && "ok" in checked) return { kind: "limited", rule: checked.rule, retryAfterMs: checked.retryAfterMs };
    return { kind: "checked", row: checked };
  }
}

/**
 * A check's read, count (and approval) and verified mark: one step. Declared once, as the steps below: a
 * generator function made per call costs V8 a new map and promotes garbage (docs/benchmarks.md, "Memory").
 */
function* checkStep(
  q: VerifyStatements,
  find: Statement,
  decide: (row: Selectable<VerificationsTable>) => CheckValues | null,
): Step<Selectable<VerificationsTable> | null> {
  const [row] = (yield find).rows as Selectable<VerificationsTable>[];
  if (row === undefined) return null;
  const values = decide(row);
  if (values === null) return null;
  if ((yield statement(q.checkOnce, values)).changes !== 1) return null;
  // SQLite's transactions run one at a time (sqlite/runner.ts): nothing changed the row since it was
  // read, so after the count it is that row with the count's changes, made here on the row read.
  row.check_count += 1;
  row.updated_at = values.now;
  if (values.approve === 1) {
    row.status = "approved";
    row.pending_to = null;
    yield statement(q.markVerified, { to: row.to_addr, purpose: values.purpose, verification: row.sid, now: values.now });
  }
  return row;
}

/** `open`, then the attempt's row on the verification it opened: one step (a start's second step, any database). */
function* openStep(q: VerifyStatements, values: OpenWithAttempt): Step<Selectable<VerificationsTable> | null> {
  const [opened] = (yield statement(q.open, values)).rows as Selectable<VerificationsTable>[];
  if (opened === undefined) return null;
  yield statement(q.attempt, attemptValues(values, opened));
  return opened;
}

/**
 * What openStep does, on SQLite's common case (OneAtATime), without RETURNING (an upsert returning the
 * row runs through a temporary table there): the pending verification is read, then a new one inserted or
 * a send added to it, and the row after the write made here from the one read. SQLite runs one
 * transaction at a time (sqlite/runner.ts), so nothing writes between the read and the write.
 */
function* openInProcessStep(q: VerifyStatements, values: OpenWithAttempt): Step<Selectable<VerificationsTable> | null> {
  const [pending] = (yield statement(q.pendingOf, { service: values.service, to: values.to })).rows as Selectable<VerificationsTable>[];
  let opened: Selectable<VerificationsTable>;
  if (pending === undefined) {
    yield statement(q.insertPending, values);
    opened = {
      sid: values.sid,
      service_sid: values.service,
      to_addr: values.to,
      pending_to: values.to,
      channel: values.channel,
      status: "pending",
      nonce: values.nonce,
      key_id: values.keyId,
      code_length: values.codeLength,
      locale: values.locale,
      send_count: 1,
      check_count: 0,
      created_at: values.now,
      updated_at: values.now,
      expires_at: values.expiresAt,
    };
  } else {
    // Out of sends or of time: no change, and the caller's second step decides (as `open`'s refused update).
    const added = yield statement(q.addSend, { sid: pending.sid, channel: values.channel, now: values.now, maxSends: values.maxSends });
    if (added.changes !== 1) return null;
    pending.send_count += 1;
    pending.channel = values.channel;
    pending.updated_at = values.now;
    opened = pending;
  }
  yield statement(q.attempt, attemptValues(values, opened));
  return opened;
}

function opening(q: VerifyStatements, values: OpenWithAttempt): () => Step<Selectable<VerificationsTable> | null> {
  return () => openStep(q, values);
}

/** VerifyStore on SQL: every write through the adapter's runner (never a synchronous wait on SQLite). */
export class SqlVerifyStore implements VerifyStore {
  readonly #db: Kysely<Database>;
  readonly #runner: Runner;
  /** Tells a unique-constraint violation from any other error (the adapter's). */
  readonly #unique: (error: unknown) => boolean;
  /** A start's, a check's and a service read's statements, compiled once. */
  readonly #q: VerifyStatements;
  /** A start's and a check's common case: one at a time, or the adapter's batches. */
  readonly #hot: VerifyHotPath;
  readonly #units: Units;
  /** SQLite: the database runs in the process, and a transaction costs no round trip. */
  readonly #inProcess: boolean;
  /** Bookkeeping nobody decides on (the verified mark of an approved code's row), one commit per turn. */
  readonly #groupCommit: GroupCommit;

  constructor(
    db: Kysely<Database>,
    runner: Runner,
    options: { unique: (error: unknown) => boolean; groupCommit: GroupCommit; inProcess: boolean; hot: VerifyHotPath | null; units: Units },
  ) {
    this.#db = db;
    this.#runner = runner;
    this.#unique = options.unique;
    this.#groupCommit = options.groupCommit;
    this.#q = verifyStatements(db);
    this.#inProcess = options.inProcess;
    this.#units = options.units;
    this.#hot = options.hot ?? new OneAtATime(runner, this.#q, options.units);
  }

  // ---- Services ------------------------------------------------------------------------------------

  async createService(service: VerifyServiceRecord): Promise<void> {
    await this.#runner.one(once(this.#db.insertInto("verify_services").values(serviceRow(service))));
  }

  async getService(sid: string): Promise<VerifyServiceRecord | null> {
    const [row] = (await this.#runner.one<Selectable<VerifyServicesTable>>(statement(this.#q.service, { sid }))).rows;
    return row === undefined ? null : serviceFrom(row);
  }

  async listServices(page: { offset: number; size: number }): Promise<Page<VerifyServiceRecord>> {
    const rows = await this.#db
      .selectFrom("verify_services")
      .selectAll()
      .orderBy("created_at")
      .orderBy("sid")
      .limit(page.size + 1)
      .offset(page.offset)
      .execute();
    return { items: rows.slice(0, page.size).map(serviceFrom), more: rows.length > page.size };
  }

  async updateService(service: VerifyServiceRecord): Promise<boolean> {
    const { sid: _sid, created_at: _created, ...row } = serviceRow(service);
    const update = this.#db.updateTable("verify_services").set(row).where("sid", "=", service.sid);
    return (await this.#runner.one(once(update))).changes === 1;
  }

  deleteService(sid: string, now: number): Promise<boolean> {
    const db = this.#db;
    return this.#runner.transaction(function* (): Step<boolean> {
      const gone = yield once(db.deleteFrom("verify_services").where("sid", "=", sid));
      if (gone.changes === 0) return false;
      yield once(db.deleteFrom("verify_buckets").where("service_sid", "=", sid));
      yield once(db.deleteFrom("verify_rate_limits").where("service_sid", "=", sid));
      yield once(
        db
          .updateTable("verifications")
          .set({ status: "canceled", pending_to: null, updated_at: now })
          .where("service_sid", "=", sid)
          .where("status", "=", "pending"),
      );
      return true;
    });
  }

  // ---- Verifications -------------------------------------------------------------------------------

  /**
   * The common case is one step: `take`'s units, open (a new verification, or one more send on the pending
   * one) and its attempt's row (VerifyHotPath.open). Only when the pending one is out of time (expire it and open
   * again) or of sends does a second step run.
   */
  async startVerification(input: StartInput): Promise<Started> {
    const { serviceSid: service, to, channel, now, fresh, maxSends, attempt } = input;
    // Written out: on Node 20's V8 a literal that starts with a spread costs about 1 µs per field after it.
    const values: OpenWithAttempt = {
      sid: fresh.sid,
      nonce: fresh.nonce,
      keyId: fresh.keyId,
      codeLength: fresh.codeLength,
      locale: fresh.locale,
      expiresAt: fresh.expiresAt,
      service,
      to,
      channel,
      now,
      maxSends,
      attempt: attempt.sid,
      purpose: verifyPurpose(service),
      attemptChannel: attempt.channel,
      country: attempt.country,
      priceMicros: attempt.priceMicros,
    };
    const first = await this.#hot.open(values, input.take);
    if (first.kind === "limited") return first;
    if (first.row !== null) return { kind: "started", verification: verificationFrom(first.row) };
    const q = this.#q;
    const open = opening(q, values);
    const second = this.#runner.transaction(function* (): Step<Started> {
      // Out of time: it expires, and a new one opens. Out of sends: nothing is stored.
      const expired = yield statement(q.expire, { service, to, now });
      const opened = expired.changes === 1 ? yield* open() : null;
      if (opened !== null) return { kind: "started", verification: verificationFrom(opened) };
      const [held] = (yield statement(q.pendingOf, { service, to })).rows as Selectable<VerificationsTable>[];
      if (held === undefined) {
        // The pending one ended (approved, canceled) between the two steps: a new one opens.
        const reopened = yield* open();
        if (reopened === null) throw new Error("a start could neither open a verification nor find the pending one");
        return { kind: "started", verification: verificationFrom(reopened) };
      }
      return { kind: "max_sends", verification: verificationFrom(held) };
    });
    // No send opened (out of sends, or a failure): the units taken with it go back.
    const started = await second.catch(async (error: unknown) => {
      await this.#units.giveBack(input.take, now).catch(() => {});
      throw error;
    });
    if (started.kind === "max_sends") await this.#units.giveBack(input.take, now);
    return started;
  }

  async getVerification(serviceSid: string, sid: string): Promise<VerificationRecord | null> {
    const [row] = (await this.#runner.one<Selectable<VerificationsTable>>(statement(this.#q.bySid, { service: serviceSid, sid }))).rows;
    return row === undefined ? null : verificationFrom(row);
  }

  async sendAttempts(verification: VerificationRecord): Promise<SendAttempt[]> {
    const values = { to: verification.to, purpose: verifyPurpose(verification.serviceSid), verification: verification.sid };
    const { rows } = await this.#runner.one<{ id: string; channel: string; created_at: number }>(statement(this.#q.attempts, values));
    return rows.map((row) => ({ sid: row.id, channel: row.channel, createdAt: Number(row.created_at) }));
  }

  async checkVerification(
    serviceSid: string,
    target: CheckTarget,
    now: number,
    maxChecks: number,
    matches: (verification: VerificationRecord) => boolean,
    take: readonly Bucket[] = [],
  ): Promise<Checked> {
    const q = this.#q;
    const fast = await this.#checkOnce(serviceSid, target, now, maxChecks, matches, take);
    if (fast !== null) return fast;
    // Found and counted in one statement, before the comparison: parallel guesses cannot outrun the count.
    const count =
      "to" in target
        ? statement(q.countByTo, { service: serviceSid, to: target.to, now, maxChecks })
        : statement(q.countBySid, { service: serviceSid, sid: target.sid, now, maxChecks });
    const checked = await this.#guarded(function* (): Step<Checked | null> {
      const [counted] = (yield count).rows as Selectable<VerificationsTable>[];
      if (counted === undefined) return null;
      const verification = verificationFrom(counted);
      if (!matches(verification)) return { kind: "mismatch", verification };
      // Guarded by its status: one approval however many right codes arrive at once.
      const approved = yield statement(q.approve, { sid: verification.sid, now });
      // Another check approved or ended it between this one's count and its match (read again below).
      if (approved.rows.length !== 1) return { kind: "not_found", known: verification };
      return { kind: "approved", verification: { ...verification, status: "approved", updatedAt: now } };
    });
    if (checked === null) return this.#noCheck(serviceSid, target, now);
    if (checked.kind === "not_found" && checked.known !== null) {
      return { kind: "not_found", known: await this.getVerification(serviceSid, checked.known.sid) };
    }
    if (checked.kind === "approved") {
      const { to, sid } = checked.verification;
      await this.#groupCommit.add(statement(q.markVerified, { to, purpose: verifyPurpose(serviceSid), verification: sid, now }));
    }
    return checked;
  }

  /**
   * A check's common case, one read and one write: the pending verification is read (no lock), the code
   * compared with it (a verification's code never changes), then counted and, on a match, approved in one
   * guarded statement, so the count still binds every try and one right code approves once. Null when the
   * verification is not there to check or changed in between: the caller takes the step by step path.
   */
  async #checkOnce(
    serviceSid: string,
    target: CheckTarget,
    now: number,
    maxChecks: number,
    matches: (verification: VerificationRecord) => boolean,
    take: readonly Bucket[],
  ): Promise<Checked | null> {
    let matched = false;
    const checked = await this.#hot.checkOnce(
      serviceSid,
      target,
      now,
      (row) => {
        const found = verificationFrom(row);
        if (found.status !== "pending" || found.expiresAt <= now || found.checkCount >= maxChecks) return null;
        found.checkCount += 1;
        matched = matches(found);
        return { sid: found.sid, now, maxChecks, approve: matched ? 1 : 0, purpose: verifyPurpose(serviceSid) };
      },
      take,
    );
    if (checked.kind === "limited") return checked;
    if (checked.row === null) return null;
    const verification = verificationFrom(checked.row);
    return matched ? { kind: "approved", verification } : { kind: "mismatch", verification };
  }

  /**
   * Runs a step whose every statement is guarded on its own (each checks the state it changes): in one
   * transaction on SQLite, where a transaction costs nothing more, and statement by statement on
   * PostgreSQL, where BEGIN and COMMIT would be two more round trips.
   */
  #guarded<T>(step: () => Step<T>): Promise<T> {
    if (this.#inProcess) return this.#runner.transaction(step);
    return (async () => {
      const steps = step();
      let next = steps.next();
      while (!next.done) next = steps.next(await this.#runner.one(next.value));
      return next.value;
    })();
  }

  /** Why a check counted nothing: no pending verification, its time is over, or its checks are spent (then it ends). */
  #noCheck(serviceSid: string, target: CheckTarget, now: number): Promise<Checked> {
    const q = this.#q;
    const find =
      "to" in target
        ? statement(q.pendingOf, { service: serviceSid, to: target.to })
        : statement(q.bySid, { service: serviceSid, sid: target.sid });
    const reread = function* (sid: string): Step<VerificationRecord> {
      return verificationFrom((yield statement(q.bySid, { service: serviceSid, sid })).rows[0] as Selectable<VerificationsTable>);
    };
    return this.#runner.transaction(function* (): Step<Checked> {
      const [row] = (yield find).rows as Selectable<VerificationsTable>[];
      if (row === undefined) return { kind: "not_found", known: null };
      const found = verificationFrom(row);
      if (found.status !== "pending") return { kind: "not_found", known: found };
      if (found.expiresAt <= now) {
        yield statement(q.markExpired, { sid: found.sid, now });
        return { kind: "not_found", known: { ...found, status: "expired" } };
      }
      // Pending, with time left: its checks are spent, and this one ends it (unless another did first).
      const over = yield statement(q.spent, { sid: found.sid, now });
      if (over.changes === 1) return { kind: "max_checks", verification: { ...found, status: "max_attempts_reached", updatedAt: now } };
      return { kind: "not_found", known: yield* reread(found.sid) };
    });
  }

  endVerification(serviceSid: string, sid: string, status: "approved" | "canceled", now: number): Promise<VerificationRecord | null> {
    const db = this.#db;
    const q = this.#q;
    const end = db
      .updateTable("verifications")
      .set({ status, pending_to: null, updated_at: now })
      .where("sid", "=", sid)
      .where("service_sid", "=", serviceSid)
      .where("status", "=", "pending")
      .where("expires_at", ">", now)
      .returningAll();
    return this.#runner.transaction(function* (): Step<VerificationRecord | null> {
      const [row] = (yield once(end)).rows as Selectable<VerificationsTable>[];
      if (row === undefined) return null;
      const verification = verificationFrom(row);
      if (status === "approved") {
        yield statement(q.markVerified, { to: verification.to, purpose: verifyPurpose(serviceSid), verification: verification.sid, now });
      }
      return verification;
    });
  }

  // ---- Rate limits and buckets ---------------------------------------------------------------------

  async createRateLimit(limit: RateLimitRecord): Promise<"created" | "duplicate"> {
    const row = {
      sid: limit.sid,
      service_sid: limit.serviceSid,
      unique_name: limit.uniqueName,
      description: limit.description,
      created_at: limit.createdAt,
      updated_at: limit.updatedAt,
    };
    return this.#insert(once(this.#db.insertInto("verify_rate_limits").values(row)));
  }

  async getRateLimit(serviceSid: string, sid: string): Promise<RateLimitRecord | null> {
    const row = await this.#db
      .selectFrom("verify_rate_limits")
      .selectAll()
      .where("sid", "=", sid)
      .where("service_sid", "=", serviceSid)
      .executeTakeFirst();
    return row === undefined ? null : rateLimitFrom(row);
  }

  async listRateLimits(serviceSid: string, page: { offset: number; size: number }): Promise<Page<RateLimitRecord>> {
    const rows = await this.#db
      .selectFrom("verify_rate_limits")
      .selectAll()
      .where("service_sid", "=", serviceSid)
      .orderBy("created_at")
      .orderBy("sid")
      .limit(page.size + 1)
      .offset(page.offset)
      .execute();
    return { items: rows.slice(0, page.size).map(rateLimitFrom), more: rows.length > page.size };
  }

  async updateRateLimit(serviceSid: string, sid: string, description: string | null, now: number): Promise<RateLimitRecord | null> {
    const update = this.#db
      .updateTable("verify_rate_limits")
      .set({ description, updated_at: now })
      .where("sid", "=", sid)
      .where("service_sid", "=", serviceSid)
      .returningAll();
    const [row] = (await this.#runner.one<Selectable<VerifyRateLimitsTable>>(once(update))).rows;
    return row === undefined ? null : rateLimitFrom(row);
  }

  deleteRateLimit(serviceSid: string, sid: string): Promise<boolean> {
    const db = this.#db;
    return this.#runner.transaction(function* (): Step<boolean> {
      const gone = yield once(db.deleteFrom("verify_rate_limits").where("sid", "=", sid).where("service_sid", "=", serviceSid));
      if (gone.changes === 0) return false;
      yield once(db.deleteFrom("verify_buckets").where("rate_limit_sid", "=", sid));
      return true;
    });
  }

  createBucket(bucket: BucketRecord): Promise<"created" | "duplicate"> {
    const row = {
      sid: bucket.sid,
      rate_limit_sid: bucket.rateLimitSid,
      service_sid: bucket.serviceSid,
      max: bucket.max,
      interval: bucket.interval,
      created_at: bucket.createdAt,
      updated_at: bucket.updatedAt,
    };
    return this.#insert(once(this.#db.insertInto("verify_buckets").values(row)));
  }

  async getBucket(rateLimitSid: string, sid: string): Promise<BucketRecord | null> {
    const row = await this.#db
      .selectFrom("verify_buckets")
      .selectAll()
      .where("sid", "=", sid)
      .where("rate_limit_sid", "=", rateLimitSid)
      .executeTakeFirst();
    return row === undefined ? null : bucketFrom(row);
  }

  async listBuckets(rateLimitSid: string, page: { offset: number; size: number }): Promise<Page<BucketRecord>> {
    const rows = await this.#db
      .selectFrom("verify_buckets")
      .selectAll()
      .where("rate_limit_sid", "=", rateLimitSid)
      .orderBy("created_at")
      .orderBy("sid")
      .limit(page.size + 1)
      .offset(page.offset)
      .execute();
    return { items: rows.slice(0, page.size).map(bucketFrom), more: rows.length > page.size };
  }

  async updateBucket(
    rateLimitSid: string,
    sid: string,
    change: { max?: number; interval?: number },
    now: number,
  ): Promise<BucketRecord | null | "duplicate"> {
    const update = this.#db
      .updateTable("verify_buckets")
      .set({ ...change, updated_at: now })
      .where("sid", "=", sid)
      .where("rate_limit_sid", "=", rateLimitSid)
      .returningAll();
    try {
      const [row] = (await this.#runner.one<Selectable<VerifyBucketsTable>>(once(update))).rows;
      return row === undefined ? null : bucketFrom(row);
    } catch (error) {
      if (this.#unique(error)) return "duplicate";
      throw error;
    }
  }

  async deleteBucket(rateLimitSid: string, sid: string): Promise<boolean> {
    const gone = this.#db.deleteFrom("verify_buckets").where("sid", "=", sid).where("rate_limit_sid", "=", rateLimitSid);
    return (await this.#runner.one(once(gone))).changes === 1;
  }

  async bucketsOf(serviceSid: string, names: readonly string[]): Promise<(BucketRecord & { uniqueName: string })[]> {
    if (names.length === 0) return [];
    const rows = await this.#db
      .selectFrom("verify_buckets as b")
      .innerJoin("verify_rate_limits as l", "l.sid", "b.rate_limit_sid")
      .selectAll("b")
      .select("l.unique_name")
      .where("l.service_sid", "=", serviceSid)
      .where("l.unique_name", "in", [...names])
      .execute();
    return rows.map((row) => ({ ...bucketFrom(row), uniqueName: row.unique_name }));
  }

  async purgeVerifications(before: number, batch: number): Promise<number> {
    const db = this.#db;
    const old = sql`delete from verifications where sid in (
      select sid from verifications where created_at < ${before} order by created_at limit ${batch})`;
    return (await this.#runner.one(once({ compile: () => old.compile(db) }))).changes;
  }

  async #insert(insert: ReturnType<typeof once>): Promise<"created" | "duplicate"> {
    try {
      await this.#runner.one(insert);
      return "created";
    } catch (error) {
      if (this.#unique(error)) return "duplicate";
      throw error;
    }
  }
}

function serviceRow(service: VerifyServiceRecord): Selectable<VerifyServicesTable> {
  return {
    sid: service.sid,
    friendly_name: service.friendlyName,
    code_length: service.codeLength,
    settings: JSON.stringify(service.settings),
    created_at: service.createdAt,
    updated_at: service.updatedAt,
  };
}

function serviceFrom(row: Selectable<VerifyServicesTable>): VerifyServiceRecord {
  return {
    sid: row.sid,
    friendlyName: row.friendly_name,
    codeLength: Number(row.code_length),
    settings: JSON.parse(row.settings) as Record<string, unknown>,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function verificationFrom(row: Selectable<VerificationsTable>): VerificationRecord {
  return {
    sid: row.sid,
    serviceSid: row.service_sid,
    to: row.to_addr,
    channel: row.channel,
    status: row.status as VerificationStatus,
    nonce: row.nonce,
    keyId: row.key_id,
    codeLength: Number(row.code_length),
    locale: row.locale,
    sendCount: Number(row.send_count),
    checkCount: Number(row.check_count),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    expiresAt: Number(row.expires_at),
  };
}

function rateLimitFrom(row: Selectable<VerifyRateLimitsTable>): RateLimitRecord {
  return {
    sid: row.sid,
    serviceSid: row.service_sid,
    uniqueName: row.unique_name,
    description: row.description,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

function bucketFrom(row: Selectable<VerifyBucketsTable>): BucketRecord {
  return {
    sid: row.sid,
    rateLimitSid: row.rate_limit_sid,
    serviceSid: row.service_sid,
    max: Number(row.max),
    interval: Number(row.interval),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}
