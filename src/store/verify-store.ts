import { type Kysely, type Selectable, sql } from "kysely";
import { verifyPurpose } from "../records.js";
import { once, type Runner, type Step } from "./prepared.js";
import type { Database, VerificationsTable, VerifyBucketsTable, VerifyRateLimitsTable, VerifyServicesTable } from "./schema.js";

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
}

export type Started =
  /** A send was opened: on a new verification (`sendCount` 1) or on the pending one. */
  | { kind: "started"; verification: VerificationRecord }
  /** The pending verification has had `maxSends` sends: nothing was stored. */
  | { kind: "max_sends"; verification: VerificationRecord };

/** Which verification a check is for: the pending one of an address, or one by its sid. */
export type CheckTarget = { to: string } | { sid: string };

export type Checked =
  /** No pending verification (never, or approved, canceled, expired, out of checks); `known` when found by sid. */
  | { kind: "not_found"; known: VerificationRecord | null }
  /** Its checks were spent: it is over now (`max_attempts_reached`). */
  | { kind: "max_checks"; verification: VerificationRecord }
  | { kind: "mismatch"; verification: VerificationRecord }
  | { kind: "approved"; verification: VerificationRecord };

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
   * approves a verification once however many instances check it at the same time.
   */
  checkVerification(
    serviceSid: string,
    target: CheckTarget,
    now: number,
    maxChecks: number,
    matches: (verification: VerificationRecord) => boolean,
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

/** VerifyStore on SQL: every write through the adapter's runner (never a synchronous wait on SQLite). */
export class SqlVerifyStore implements VerifyStore {
  readonly #db: Kysely<Database>;
  readonly #runner: Runner;
  /** Tells a unique-constraint violation from any other error (the adapter's). */
  readonly #unique: (error: unknown) => boolean;

  constructor(db: Kysely<Database>, runner: Runner, unique: (error: unknown) => boolean) {
    this.#db = db;
    this.#runner = runner;
    this.#unique = unique;
  }

  // ---- Services ------------------------------------------------------------------------------------

  async createService(service: VerifyServiceRecord): Promise<void> {
    await this.#runner.one(once(this.#db.insertInto("verify_services").values(serviceRow(service))));
  }

  async getService(sid: string): Promise<VerifyServiceRecord | null> {
    const row = await this.#db.selectFrom("verify_services").selectAll().where("sid", "=", sid).executeTakeFirst();
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

  startVerification(input: StartInput): Promise<Started> {
    const db = this.#db;
    const { serviceSid, to, channel, now, fresh, maxSends, attempt } = input;
    const expire = db
      .updateTable("verifications")
      .set({ status: "expired", pending_to: null, updated_at: now })
      .where("service_sid", "=", serviceSid)
      .where("pending_to", "=", to)
      .where("expires_at", "<=", now);
    // A new verification, or one more send on the pending one while it has sends left (one statement, so
    // parallel starts for one address end on one verification).
    const open = db
      .insertInto("verifications")
      .values({
        sid: fresh.sid,
        service_sid: serviceSid,
        to_addr: to,
        pending_to: to,
        channel,
        status: "pending",
        nonce: fresh.nonce,
        key_id: fresh.keyId,
        code_length: fresh.codeLength,
        locale: fresh.locale,
        send_count: 1,
        check_count: 0,
        created_at: now,
        updated_at: now,
        expires_at: fresh.expiresAt,
      })
      .onConflict((oc) =>
        oc
          .columns(["service_sid", "pending_to"])
          .doUpdateSet((eb) => ({ send_count: eb("verifications.send_count", "+", 1), channel, updated_at: now }))
          .where("verifications.send_count", "<", maxSends),
      )
      .returningAll();
    const pending = db.selectFrom("verifications").selectAll().where("service_sid", "=", serviceSid).where("pending_to", "=", to);
    return this.#runner.transaction(function* (): Step<Started> {
      yield once(expire);
      const [row] = (yield once(open)).rows as Selectable<VerificationsTable>[];
      if (row === undefined) {
        const [held] = (yield once(pending)).rows as Selectable<VerificationsTable>[];
        if (held === undefined) throw new Error("a pending verification refused a send and then vanished");
        return { kind: "max_sends", verification: verificationFrom(held) };
      }
      const verification = verificationFrom(row);
      yield once(
        db.insertInto("otp_codes").values({
          id: attempt.sid,
          user_id: verification.sid,
          phone_number: to,
          purpose: verifyPurpose(serviceSid),
          code_hash: null,
          key_id: verification.keyId,
          channel: attempt.channel,
          status: "pending",
          created_at: now,
          expires_at: verification.expiresAt,
          verified_at: null,
          provider_message_id: null,
          provider_error_code: null,
          delivery_status: null,
          updated_at: now,
          country: attempt.country,
          price_micros: attempt.priceMicros,
          price_final: 0,
        }),
      );
      return { kind: "started", verification };
    });
  }

  async getVerification(serviceSid: string, sid: string): Promise<VerificationRecord | null> {
    const row = await this.#db
      .selectFrom("verifications")
      .selectAll()
      .where("sid", "=", sid)
      .where("service_sid", "=", serviceSid)
      .executeTakeFirst();
    return row === undefined ? null : verificationFrom(row);
  }

  async sendAttempts(verification: VerificationRecord): Promise<SendAttempt[]> {
    const rows = await this.#db
      .selectFrom("otp_codes")
      .select(["id", "channel", "created_at"])
      .where("phone_number", "=", verification.to)
      .where("purpose", "=", verifyPurpose(verification.serviceSid))
      .where("user_id", "=", verification.sid)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    return rows.map((row) => ({ sid: row.id, channel: row.channel, createdAt: Number(row.created_at) }));
  }

  checkVerification(
    serviceSid: string,
    target: CheckTarget,
    now: number,
    maxChecks: number,
    matches: (verification: VerificationRecord) => boolean,
  ): Promise<Checked> {
    const db = this.#db;
    const find = db
      .selectFrom("verifications")
      .selectAll()
      .where("service_sid", "=", serviceSid)
      .$if("to" in target, (q) => q.where("pending_to", "=", "to" in target ? target.to : ""))
      .$if("sid" in target, (q) => q.where("sid", "=", "sid" in target ? target.sid : ""));
    const bySid = (sid: string) => db.selectFrom("verifications").selectAll().where("sid", "=", sid);
    const pendingOnly = (sid: string) =>
      db.updateTable("verifications").where("sid", "=", sid).where("status", "=", "pending").where("pending_to", "is not", null);
    return this.#runner.transaction(function* (): Step<Checked> {
      const [row] = (yield once(find)).rows as Selectable<VerificationsTable>[];
      if (row === undefined) return { kind: "not_found", known: null };
      const found = verificationFrom(row);
      if (found.status !== "pending") return { kind: "not_found", known: found };
      if (found.expiresAt <= now) {
        yield once(pendingOnly(found.sid).set({ status: "expired", pending_to: null, updated_at: now }));
        return { kind: "not_found", known: { ...found, status: "expired" } };
      }
      const counted = (yield once(
        pendingOnly(found.sid)
          .set((eb) => ({ check_count: eb("check_count", "+", 1), updated_at: now }))
          .where("check_count", "<", maxChecks)
          .returning("check_count"),
      )).rows[0];
      if (counted === undefined) {
        const over = yield once(pendingOnly(found.sid).set({ status: "max_attempts_reached", pending_to: null, updated_at: now }));
        const ended = { ...found, status: "max_attempts_reached" as const, updatedAt: now };
        if (over.changes === 1) return { kind: "max_checks", verification: ended };
        // Another check ended it first (approved it, or spent its last check): say how it is now.
        return { kind: "not_found", known: verificationFrom((yield once(bySid(found.sid))).rows[0] as Selectable<VerificationsTable>) };
      }
      const verification = { ...found, checkCount: Number(counted.check_count), updatedAt: now };
      if (!matches(verification)) return { kind: "mismatch", verification };
      const approved = yield once(pendingOnly(found.sid).set({ status: "approved", pending_to: null, updated_at: now }));
      // Another check approved it between this one's count and its match: it is no longer pending.
      if (approved.changes !== 1)
        return { kind: "not_found", known: verificationFrom((yield once(bySid(found.sid))).rows[0] as Selectable<VerificationsTable>) };
      yield once(markVerified(db, found, now));
      return { kind: "approved", verification: { ...verification, status: "approved" } };
    });
  }

  endVerification(serviceSid: string, sid: string, status: "approved" | "canceled", now: number): Promise<VerificationRecord | null> {
    const db = this.#db;
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
      if (status === "approved") yield once(markVerified(db, verification, now));
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

/** The newest send attempt of a verification is the code that verified: analytics count it. */
function markVerified(db: Kysely<Database>, verification: VerificationRecord, now: number) {
  const newest = db
    .selectFrom("otp_codes")
    .select("id")
    .where("phone_number", "=", verification.to)
    .where("purpose", "=", verifyPurpose(verification.serviceSid))
    .where("user_id", "=", verification.sid)
    .orderBy("created_at", "desc")
    .limit(1);
  return db.updateTable("otp_codes").set({ status: "verified", verified_at: now, updated_at: now }).where("id", "in", newest);
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
