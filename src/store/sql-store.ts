import { setTimeout as sleep } from "node:timers/promises";
import { type Kysely, Migrator, type Selectable, sql } from "kysely";
import { type ChallengeKey, type ChallengeState, DELIVERY_RANK, type OtpRecord, type OtpStatus, type Purpose } from "../records.js";
import { type AdapterOptions, type DialectAdapter, openAdapter } from "./adapter.js";
import { migrationProvider } from "./migrations/index.js";
import { once, type Step, statement } from "./prepared.js";
import { type ReportStore, SqlReportStore } from "./report-store.js";
import type { Database, OtpCodesTable, UsersTable } from "./schema.js";
import { challengeFrom, keyIdOf, markPhoneVerifiedStep, tryStep } from "./steps.js";
import type {
  Bucket,
  BudgetHold,
  BudgetSettlement,
  Consumed,
  Counter,
  DatabaseLocation,
  DeliveryUpdate,
  IdempotencyClaim,
  IdempotentRequest,
  LiveCode,
  NewUser,
  PurgeResult,
  RefusalRecord,
  SendOpened,
  SendRule,
  SendTake,
  Store,
  StoredAnswer,
  TryTake,
  UserRecord,
  VerifyRule,
  VerifyTry,
} from "./store.js";
import { SqlVerifyStore, type VerifyStore } from "./verify-store.js";

/** Rows a purge deletes per transaction: a few milliseconds of the write lock each. */
const PURGE_BATCH = 1000;

/**
 * Every role of the Store on SQL: the statements both databases share are here, the ones whose best form
 * differs (a send, a try's takes, the counters' take) are the adapter's (sqlite/, postgres/). Every write
 * goes through the adapter's runner, so on SQLite none of them waits synchronously for another process.
 */
export class SqlStore implements Store {
  readonly #a: DialectAdapter;
  readonly #db: Kysely<Database>;
  /** Reports over the codes and refusals (report-store.ts): the reads and roll-ups analytics needs. */
  readonly reports: ReportStore;
  /** What the Twilio Verify v2-compatible API keeps (verify-store.ts). */
  readonly verify: VerifyStore;

  constructor(database: DatabaseLocation, options: AdapterOptions = {}) {
    this.#a = openAdapter(database, options);
    this.#db = this.#a.db;
    this.reports = new SqlReportStore(this.#db, this.#a.runner);
    this.verify = new SqlVerifyStore(this.#db, this.#a.runner, {
      unique: (error) => this.#a.uniqueViolation(error) !== null,
      groupCommit: this.#a.groupCommit,
      // The one place outside the adapters that reads the dialect: a /v2 start and check group their
      // statements by what a round trip costs (verify-store.ts).
      inProcess: this.#a.name === "sqlite",
      hot: this.#a.verifyV2,
      units: {
        take: (buckets, now) => this.takeUnits(buckets, now),
        giveBack: (buckets, now) => this.giveBackUnits(buckets, now),
        withUnits: (buckets, now, step) => this.#a.withUnits(buckets, now, step),
      },
    });
  }

  get dialect(): "sqlite" | "postgres" {
    return this.#a.name;
  }

  async migrate(): Promise<string[]> {
    const { error, results = [] } = await this.#a.migrating((schema) =>
      new Migrator({
        db: this.#db,
        provider: migrationProvider,
        ...(schema === undefined ? {} : { migrationTableSchema: schema }),
      }).migrateToLatest(),
    );
    if (error !== undefined) {
      const failed = results.find((r) => r.status === "Error")?.migrationName ?? "unknown";
      throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    return results.filter((r) => r.status === "Success").map((r) => r.migrationName);
  }

  ping(): Promise<void> {
    return this.#a.ping();
  }

  warnings(): Promise<string[]> {
    return this.#a.warnings();
  }

  close(): Promise<void> {
    return this.#a.close();
  }

  // ---- Codes ---------------------------------------------------------------------------------------

  beginSend(record: OtpRecord, now: number, rule: SendRule, take: SendTake = {}): Promise<SendOpened> {
    const open = {
      phone: record.phoneNumber,
      purpose: record.purpose,
      user: record.userId,
      now,
      expiresAt: record.expiresAt,
      baseMs: rule.baseCooldownMs,
      maxMs: rule.maxCooldownMs,
      sendsToMax: rule.sendsToMax,
      exempt: rule.exempt ? 1 : 0,
    };
    const code = {
      id: record.id,
      codeHash: record.codeHash,
      keyId: record.keyId,
      channel: record.channel,
      status: record.status,
      createdAt: record.createdAt,
      verifiedAt: record.verifiedAt,
      providerMessageId: record.providerMessageId,
      providerErrorCode: record.providerErrorCode,
      deliveryStatus: record.deliveryStatus,
      country: record.country,
      priceMicros: record.priceMicros,
    };
    return this.#a.beginSend({ open, code, rule, take, now });
  }

  async getChallenge(key: ChallengeKey): Promise<ChallengeState | null> {
    const row = await this.#db
      .selectFrom("otp_challenges")
      .selectAll()
      .where("phone_number", "=", key.phoneNumber)
      .where("purpose", "=", key.purpose)
      .where("user_id", "=", key.userId)
      .executeTakeFirst();
    return row === undefined ? null : challengeFrom(row as unknown as Record<string, unknown>);
  }

  tryVerify(
    key: ChallengeKey,
    now: number,
    rule: VerifyRule,
    match: (codes: LiveCode[]) => LiveCode | undefined,
    take: TryTake = {},
  ): Promise<VerifyTry> {
    const codes = this.#a.statements.codes;
    // `parts` let an adapter run a try of its own (SQLite's try-step.ts, PostgreSQL's batches).
    return this.#a.tryVerify(() => tryStep(codes, key, now, rule, match), take, now, { key, rule, match });
  }

  async lockChallenge(key: ChallengeKey, until: number, now: number): Promise<void> {
    const q = this.#a.statements.codes;
    const challenge = { phone: key.phoneNumber, purpose: key.purpose, user: key.userId };
    await this.#a.runner.transaction(function* () {
      yield statement(q.lockChallenge, { ...challenge, until });
      yield statement(q.retireLive, { ...challenge, status: "locked", now });
    });
  }

  async updateDelivery(id: string, update: DeliveryUpdate, now: number): Promise<void> {
    // Nobody decides anything on a delivery answer: the answers of one event-loop turn share one transaction.
    const values = {
      id,
      status: update.status,
      now,
      providerMessageId: update.providerMessageId ?? null,
      providerErrorCode: update.providerErrorCode ?? null,
      deliveryStatus: update.deliveryStatus ?? null,
      channel: update.channel ?? null,
      fallbackFrom: update.fallbackFrom ?? null,
    };
    await this.#a.groupCommit.add(statement(this.#a.statements.codes.updateDelivery, values, `otp_codes:${id}`));
  }

  async recordDeliveryStatus(providerMessageId: string, status: string, errorCode: string | null, now: number): Promise<boolean> {
    const rank = DELIVERY_RANK[status];
    if (rank === undefined) return false;
    const values = { sid: providerMessageId, status, rank, errorCode, now };
    return (await this.#a.runner.one(statement(this.#a.statements.codes.deliveryCallback, values))).changes === 1;
  }

  async findCode(id: string): Promise<OtpRecord | null> {
    const row = await this.#db.selectFrom("otp_codes").selectAll().where("id", "=", id).executeTakeFirst();
    return row === undefined ? null : codeFrom(row);
  }

  async recordRefusal(refusal: RefusalRecord): Promise<void> {
    const { id, createdAt: now, rule, code, purpose, userId: user, country, phonePrefix: prefix, ip } = refusal;
    const values = { id, now, rule, code, purpose, user, country, prefix, ip };
    await this.#a.runner.one(statement(this.#a.statements.budget.refusal, values));
  }

  // ---- Counters ------------------------------------------------------------------------------------

  takeUnits(buckets: readonly Bucket[], now: number): Promise<Consumed> {
    return this.#a.takeUnits(buckets, now);
  }

  async giveBackUnits(buckets: readonly Bucket[], now: number): Promise<void> {
    if (buckets.length === 0) return;
    // A release keeps the window the take started (as Redis does); only a step's own refusal undoes it.
    const { giveBack } = this.#a.statements.counters;
    await this.#a.runner.transaction(function* () {
      for (const bucket of buckets) yield statement(giveBack, { key: bucket.key, now });
    });
  }

  async addCounts(keys: readonly string[], windowMs: number, now: number): Promise<void> {
    // Plain counting decides nothing at once: it joins the group commit.
    const { add } = this.#a.statements.counters;
    await this.#a.groupCommit.add(...keys.map((key) => statement(add, { key, now, resetAt: now + windowMs }, `rate_limits:${key}`)));
  }

  readCounters(keys: readonly string[], now: number): Promise<Counter[]> {
    return this.#a.readCounters(keys, now);
  }

  // ---- Budget --------------------------------------------------------------------------------------

  async reserveBudget(hold: BudgetHold, now: number): Promise<boolean> {
    if (hold.micros > hold.capMicros) return false;
    const values = { period: hold.period, micros: hold.micros, cap: hold.capMicros, now };
    return (await this.#a.runner.one(statement(this.#a.statements.budget.reserve, values))).rows.length === 1;
  }

  async settleBudget(settlement: BudgetSettlement, now: number): Promise<void> {
    const p = this.#a.statements.budget;
    await this.#a.runner.transaction(function* () {
      yield statement(p.settle, { period: settlement.period, reserved: settlement.reservedMicros, spent: settlement.spentMicros, now });
      yield statement(p.codePrice, { id: settlement.codeId, micros: settlement.spentMicros, final: settlement.final ? 1 : 0, now });
    });
  }

  async budget(period: string): Promise<{ spentMicros: number; reservedMicros: number }> {
    const [row] = (await this.#a.runner.one(statement(this.#a.statements.budget.budget, { period }))).rows;
    return { spentMicros: Number(row?.spent_micros ?? 0), reservedMicros: Number(row?.reserved_micros ?? 0) };
  }

  // ---- Users ---------------------------------------------------------------------------------------

  async createUser(user: NewUser): Promise<UserRecord | { conflict: "username" | "email" }> {
    const insert = once(
      this.#db.insertInto("users").values({
        id: user.id,
        username: user.username,
        email: user.email,
        password_hash: user.passwordHash,
        phone_number: user.phoneNumber,
        phone_verified: 0,
        role: "user",
        token_version: 0,
        created_at: user.createdAt,
        updated_at: user.createdAt,
      }),
    );
    try {
      await this.#a.runner.one(insert);
    } catch (error) {
      const clash = this.#a.uniqueViolation(error);
      if (clash === null) throw error;
      return { conflict: clash.column === "email" ? "email" : "username" };
    }
    return { ...user, phoneVerified: false, role: "user", tokenVersion: 0 };
  }

  async findUserById(id: string): Promise<UserRecord | null> {
    const row = await this.#db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
    return row === undefined ? null : userFrom(row);
  }

  async findUserByLogin(login: { username?: string; email?: string }): Promise<UserRecord | null> {
    let query = this.#db.selectFrom("users").selectAll();
    if (login.username !== undefined) query = query.where("username", "=", login.username);
    else if (login.email !== undefined) query = query.where("email", "=", login.email);
    else return null;
    const row = await query.executeTakeFirst();
    return row === undefined ? null : userFrom(row);
  }

  async setRole(login: string, role: string, now: number): Promise<UserRecord | null> {
    const key = login.trim().toLowerCase();
    const user = await this.findUserByLogin(key.includes("@") ? { email: key } : { username: key });
    if (user === null) return null;
    await this.#a.runner.one(once(this.#db.updateTable("users").set({ role, updated_at: now }).where("id", "=", user.id)));
    return { ...user, role };
  }

  markPhoneVerified(userId: string, phoneNumber: string, now: number): Promise<boolean> {
    const codes = this.#a.statements.codes;
    return this.#a.runner.transaction(() => markPhoneVerifiedStep(codes, userId, phoneNumber, now));
  }

  async findUserByVerifiedPhone(phoneNumber: string): Promise<UserRecord | null> {
    const row = await this.#db
      .selectFrom("users")
      .selectAll()
      .where("phone_number", "=", phoneNumber)
      .where("phone_verified", "=", 1)
      .orderBy("updated_at", "desc")
      .executeTakeFirst();
    return row === undefined ? null : userFrom(row);
  }

  async setPassword(userId: string, passwordHash: string, now: number): Promise<boolean> {
    const update = this.#db
      .updateTable("users")
      .set((eb) => ({ password_hash: passwordHash, token_version: eb("token_version", "+", 1), updated_at: now }))
      .where("id", "=", userId);
    return (await this.#a.runner.one(once(update))).changes === 1;
  }

  // ---- Idempotency keys ----------------------------------------------------------------------------

  claimIdempotencyKey(request: IdempotentRequest, now: number, options: { ttlMs: number; leaseMs: number }): Promise<IdempotencyClaim> {
    const db = this.#db;
    const { scope, key, fingerprint } = request;
    const row = { scope, key, fingerprint, state: "in_flight", status: null, content_type: null, body: null };
    const times = { created_at: now, expires_at: now + options.ttlMs, lease_until: now + options.leaseMs };
    // Taken when free, when its answer is older than the ttl, or when the request that held it died.
    const claim = db
      .insertInto("idempotency_keys")
      .values({ ...row, ...times })
      .onConflict((oc) =>
        oc
          .columns(["scope", "key"])
          .doUpdateSet({ ...row, ...times })
          .where((eb) =>
            eb.or([
              eb("idempotency_keys.expires_at", "<=", now),
              eb.and([
                eb("idempotency_keys.state", "=", "in_flight"),
                eb("idempotency_keys.lease_until", "<=", now),
                eb("idempotency_keys.fingerprint", "=", fingerprint),
              ]),
            ]),
          ),
      )
      .returning("key");
    const held = db
      .selectFrom("idempotency_keys")
      .select(["fingerprint", "state", "status", "content_type", "body"])
      .where("scope", "=", scope)
      .where("key", "=", key);
    return this.#a.runner.transaction(function* (): Step<IdempotencyClaim> {
      if ((yield once(claim)).rows.length === 1) return { kind: "claimed" };
      const [stored] = (yield once(held)).rows;
      if (stored === undefined) return { kind: "in_flight" };
      if (stored.fingerprint !== fingerprint) return { kind: "mismatch" };
      if (stored.state !== "done") return { kind: "in_flight" };
      return {
        kind: "done",
        answer: { status: Number(stored.status), contentType: String(stored.content_type), body: String(stored.body) },
      };
    });
  }

  async completeIdempotencyKey(request: IdempotentRequest, answer: StoredAnswer): Promise<void> {
    const done = this.#db
      .updateTable("idempotency_keys")
      .set({ state: "done", status: answer.status, content_type: answer.contentType, body: answer.body })
      .where("scope", "=", request.scope)
      .where("key", "=", request.key)
      .where("state", "=", "in_flight");
    await this.#a.runner.one(once(done));
  }

  async releaseIdempotencyKey(request: IdempotentRequest): Promise<void> {
    const free = this.#db
      .deleteFrom("idempotency_keys")
      .where("scope", "=", request.scope)
      .where("key", "=", request.key)
      .where("state", "=", "in_flight");
    await this.#a.runner.one(once(free));
  }

  // ---- Maintenance ---------------------------------------------------------------------------------

  dropExpiredIdempotencyKeys(now: number, options: { batch?: number } = {}): Promise<number> {
    const batch = options.batch ?? PURGE_BATCH;
    const expired = sql`delete from idempotency_keys where (scope, key) in (
      select scope, key from idempotency_keys where expires_at <= ${now} limit ${batch})`;
    return this.#inBatches(batch, async () => (await this.#a.runner.one(once({ compile: () => expired.compile(this.#db) }))).changes);
  }

  clearExpiredMacs(now: number, options: { batch?: number } = {}): Promise<number> {
    const batch = options.batch ?? PURGE_BATCH;
    // The expired codes that still hold a MAC, a batch at a time by the created_at index.
    const expired = sql`update otp_codes set code_hash = null where id in (
      select id from otp_codes where code_hash is not null and expires_at <= ${now} order by created_at limit ${batch})`;
    return this.#inBatches(batch, async () => (await this.#a.runner.one(once({ compile: () => expired.compile(this.#db) }))).changes);
  }

  async purge(before: number, options: { batch?: number } = {}): Promise<PurgeResult> {
    const batch = options.batch ?? PURGE_BATCH;
    const db = this.#db;
    // Each batch is its own short transaction: the oldest `batch` rows by the created_at index.
    const drain = (table: "otp_codes" | "otp_refusals") =>
      this.#inBatches(batch, async () => {
        const oldest = db.selectFrom(table).select("id").where("created_at", "<", before).orderBy("created_at").limit(batch);
        return (await this.#a.runner.one(once(db.deleteFrom(table).where("id", "in", oldest)))).changes;
      });
    const codes = await drain("otp_codes");
    const refusals = await drain("otp_refusals");
    const challenges = await this.#purgeChallenges(before, batch);
    // The /v2 API's verifications: their send attempts went with the codes.
    await this.#inBatches(batch, () => this.verify.purgeVerifications(before, batch));
    return { codes, refusals, challenges };
  }

  /**
   * A challenge is state, not history: gone once its last code expired before the cut-off. The table has
   * no index on expires_at (every send would pay for one), so the batches walk it in key order from where
   * the last one stopped, reading without the write lock; each then deletes the keys it read.
   */
  async #purgeChallenges(before: number, batch: number): Promise<number> {
    const db = this.#db;
    let after: { phone_number: string; purpose: string; user_id: string } | null = null;
    let deleted = 0;
    await this.#inBatches(batch, async () => {
      const from = after;
      const ended = await db
        .selectFrom("otp_challenges")
        .select(["phone_number", "purpose", "user_id"])
        .where("expires_at", "<", before)
        .$if(from !== null, (q) =>
          q.where((eb) =>
            eb(
              eb.refTuple("phone_number", "purpose", "user_id"),
              ">",
              eb.tuple(from?.phone_number ?? "", from?.purpose ?? "", from?.user_id ?? ""),
            ),
          ),
        )
        .orderBy("phone_number")
        .orderBy("purpose")
        .orderBy("user_id")
        .limit(batch)
        .execute();
      if (ended.length === 0) return 0;
      after = ended[ended.length - 1] ?? null;
      const keys = sql.join(ended.map((row) => sql`(${row.phone_number}, ${row.purpose}, ${row.user_id})`));
      const gone = sql`delete from otp_challenges where expires_at < ${before} and (phone_number, purpose, user_id) in (values ${keys})`;
      deleted += (await this.#a.runner.one(once({ compile: () => gone.compile(db) }))).changes;
      return ended.length;
    });
    return deleted;
  }

  /**
   * Runs a maintenance batch after batch until one changes fewer than `batch` rows, pausing between them
   * as the adapter asks (SQLite: 10 ms, so the service's own writes get their turn); resolves the rows
   * changed in all.
   */
  async #inBatches(batch: number, next: () => Promise<number>): Promise<number> {
    let total = 0;
    const pause = this.#a.maintenancePauseMs();
    for (;;) {
      const changes = await next();
      total += changes;
      if (changes < batch) return total;
      if (pause > 0) await sleep(pause);
    }
  }
}

function codeFrom(row: Selectable<OtpCodesTable>): OtpRecord {
  return {
    id: row.id,
    userId: row.user_id,
    phoneNumber: row.phone_number,
    purpose: row.purpose as Purpose,
    codeHash: row.code_hash,
    keyId: keyIdOf(row.key_id),
    channel: row.channel,
    status: row.status as OtpStatus,
    createdAt: Number(row.created_at),
    expiresAt: Number(row.expires_at),
    verifiedAt: row.verified_at === null ? null : Number(row.verified_at),
    providerMessageId: row.provider_message_id,
    providerErrorCode: row.provider_error_code,
    deliveryStatus: row.delivery_status,
    country: row.country,
    priceMicros: row.price_micros === null ? null : Number(row.price_micros),
    priceFinal: Number(row.price_final) === 1,
    fallbackFrom: row.fallback_from,
  };
}

function userFrom(row: Selectable<UsersTable>): UserRecord {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    passwordHash: row.password_hash,
    phoneNumber: row.phone_number,
    phoneVerified: Number(row.phone_verified) === 1,
    role: row.role,
    tokenVersion: Number(row.token_version),
    createdAt: Number(row.created_at),
  };
}
