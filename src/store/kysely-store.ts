import { Kysely, Migrator, type Selectable, sql } from "kysely";
import type { DatabaseConfig } from "../config.js";
import { DELIVERY_RANK } from "../otp/delivery.js";
import type { ChallengeKey, ChallengeState, OtpRecord, OtpStatus, Purpose } from "../otp/types.js";
import { createDialect, type DialectOptions, uniqueViolation } from "./dialect.js";
import { migrationProvider } from "./migrations/index.js";
import { type OtpStatements, otpStatements } from "./otp-statements.js";
import { GroupCommit, KyselyRunner, type Runner, SqliteRunner, type Step, statement } from "./prepared.js";
import { protectionStatements } from "./protection-statements.js";
import type { Database, OtpCodesTable, UsersTable } from "./schema.js";
import type {
  BudgetSettlement,
  DeliveryUpdate,
  LiveCode,
  NewUser,
  Prelude,
  PurgeResult,
  RefusalRecord,
  SendRule,
  Store,
  UserRecord,
  VerifyRule,
  VerifyTry,
} from "./store.js";

/** The Store on Kysely: the same SQL on SQLite and PostgreSQL, dialect quirks kept in dialect.ts. */
export class KyselyStore implements Store {
  readonly dialect: "sqlite" | "postgres";
  readonly db: Kysely<Database>;
  /** Runs prepared statements and multi-statement steps (store/prepared.ts); the SQL limiter shares it. */
  readonly runner: Runner;
  readonly #q: OtpStatements;
  readonly #p: ReturnType<typeof protectionStatements>;
  /** Writes nobody waits on to decide anything, one transaction per event-loop turn; the SQL limiter shares it. */
  readonly groupCommit: GroupCommit;

  constructor(database: DatabaseConfig, options: DialectOptions = {}) {
    const info = createDialect(database, options);
    this.dialect = info.name;
    this.db = new Kysely<Database>({ dialect: info.dialect });
    // Every multi-statement transaction goes through the runner: on SQLite they run synchronously, so a
    // Kysely transaction left open across an await would be joined by them; there is none.
    this.runner = info.sqlite === undefined ? new KyselyRunner(this.db as Kysely<unknown>) : new SqliteRunner(info.sqlite);
    this.groupCommit = new GroupCommit(this.runner);
    this.#q = otpStatements(this.db);
    this.#p = protectionStatements(this.db);
  }

  async migrate(): Promise<string[]> {
    // On PostgreSQL the bookkeeping tables must be looked for in our own schema: Kysely would otherwise
    // take another schema's kysely_migration table (same database, other search_path) for ours.
    let migrationTableSchema: string | undefined;
    if (this.dialect === "postgres") {
      const current = await sql<{ schema: string }>`select current_schema() as schema`.execute(this.db);
      migrationTableSchema = current.rows[0]?.schema;
    }
    const migrator = new Migrator({
      db: this.db,
      provider: migrationProvider,
      ...(migrationTableSchema === undefined ? {} : { migrationTableSchema }),
    });
    const { error, results = [] } = await migrator.migrateToLatest();
    if (error !== undefined) {
      const failed = results.find((r) => r.status === "Error")?.migrationName ?? "unknown";
      throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    return results.filter((r) => r.status === "Success").map((r) => r.migrationName);
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.groupCommit.settled();
    await this.db.destroy();
  }

  async beginSend(
    record: OtpRecord,
    now: number,
    rule: SendRule,
    prelude?: Prelude,
  ): Promise<{ attempts: number; sendCount: number } | null> {
    const q = this.#q;
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
    const opened = (row: Record<string, unknown> | undefined) =>
      row === undefined ? null : { attempts: Number(row.attempts), sendCount: Number(row.send_count) };
    if (this.dialect === "postgres" && prelude === undefined) {
      // One statement, one round trip: the same three steps as below (otp-statements.ts).
      return opened((await this.runner.one(statement(q.beginSendPg(rule.keepLive), { ...open, ...code }))).rows[0]);
    }
    return this.runner
      .transaction(function* () {
        if (prelude !== undefined) yield* prelude();
        // The statement that decides: no row, no send (and what the prelude took goes back with it).
        const result = opened((yield statement(q.openChallenge, open)).rows[0]);
        if (result === null) throw new NotOpened();
        yield statement(q.insertCode, { ...code, phone: open.phone, purpose: open.purpose, user: open.user, expiresAt: open.expiresAt });
        // Nothing to retire until the challenge has had more sends than live codes.
        if (result.sendCount > rule.keepLive)
          yield statement(q.supersedeOlder(rule.keepLive), { phone: open.phone, purpose: open.purpose, user: open.user, now });
        return result;
      })
      .catch((error: unknown) => {
        if (error instanceof NotOpened) return null;
        throw error;
      });
  }

  async getChallenge(key: ChallengeKey): Promise<ChallengeState | null> {
    const row = await this.db
      .selectFrom("otp_challenges")
      .selectAll()
      .where("phone_number", "=", key.phoneNumber)
      .where("purpose", "=", key.purpose)
      .where("user_id", "=", key.userId)
      .executeTakeFirst();
    if (row === undefined) return null;
    return {
      attempts: row.attempts,
      sendCount: row.send_count,
      lastSentAt: row.last_sent_at,
      expiresAt: row.expires_at,
      lockedUntil: row.locked_until,
      verifiedAt: row.verified_at,
    };
  }

  async tryVerify(
    key: ChallengeKey,
    now: number,
    rule: VerifyRule,
    match: (codes: LiveCode[]) => LiveCode | undefined,
    prelude?: Prelude,
  ): Promise<VerifyTry> {
    const q = this.#q;
    const challenge = { phone: key.phoneNumber, purpose: key.purpose, user: key.userId };
    return this.runner.transaction(function* (): Step<VerifyTry> {
      if (prelude !== undefined) yield* prelude();
      // Counted before the comparison: the budget can never be overrun, and on PostgreSQL the UPDATE
      // holds the challenge's row, so the tries of one challenge take turns.
      const counted = (yield statement(q.countTry, { ...challenge, maxAttempts: rule.maxAttempts, now })).rows[0];
      if (counted === undefined) return { kind: "refused" };
      const { rows } = yield statement(q.liveCodes(rule.keepLive), challenge);
      const codes = rows.map((row) => ({ id: String(row.id), codeHash: String(row.code_hash), expiresAt: Number(row.expires_at) }));
      const picked = match(codes);
      if (picked === undefined) return { kind: "mismatch", attempts: Number(counted.attempts), codes };
      if ((yield statement(q.consumeCode, { id: picked.id, now })).changes !== 1) return { kind: "refused" };
      yield statement(q.closeChallenge, { ...challenge, now });
      if (codes.length > 1) yield statement(q.retireLive, { ...challenge, status: "superseded", now });
      if (rule.markPhoneVerified) {
        const marked = yield statement(q.markPhoneVerified, { user: key.userId, phone: key.phoneNumber, now });
        if (marked.changes === 1) yield statement(q.unverifyElsewhere, { user: key.userId, phone: key.phoneNumber, now });
      }
      if (rule.onVerified !== undefined) yield* rule.onVerified();
      return { kind: "verified", id: picked.id };
    });
  }

  async lockChallenge(key: ChallengeKey, until: number, now: number): Promise<void> {
    const q = this.#q;
    const challenge = { phone: key.phoneNumber, purpose: key.purpose, user: key.userId };
    await this.runner.transaction(function* () {
      yield statement(q.lockChallenge, { ...challenge, until });
      yield statement(q.retireLive, { ...challenge, status: "locked", now });
    });
  }

  async updateDelivery(id: string, update: DeliveryUpdate, now: number): Promise<void> {
    // Group commit: nobody decides anything on a delivery answer, so the answers of one event-loop turn
    // share one transaction.
    await this.groupCommit.add(
      statement(
        this.#q.updateDelivery,
        {
          id,
          status: update.status,
          now,
          providerMessageId: update.providerMessageId ?? null,
          providerErrorCode: update.providerErrorCode ?? null,
          deliveryStatus: update.deliveryStatus ?? null,
          channel: update.channel ?? null,
          fallbackFrom: update.fallbackFrom ?? null,
        },
        `otp_codes:${id}`,
      ),
    );
  }

  async recordDeliveryStatus(providerMessageId: string, status: string, errorCode: string | null, now: number): Promise<boolean> {
    const rank = DELIVERY_RANK[status];
    if (rank === undefined) return false;
    const result = await this.runner.one(statement(this.#q.deliveryCallback, { sid: providerMessageId, status, rank, errorCode, now }));
    return result.changes === 1;
  }

  async reserveBudget(period: string, micros: number, capMicros: number, now: number): Promise<boolean> {
    if (micros > capMicros) return false;
    const reserved = await this.runner.one(statement(this.#p.reserve, { period, micros, cap: capMicros, now }));
    return reserved.rows.length === 1;
  }

  async settleBudget(settlement: BudgetSettlement, now: number): Promise<void> {
    const p = this.#p;
    await this.runner.transaction(function* () {
      yield statement(p.settle, { period: settlement.period, reserved: settlement.reservedMicros, spent: settlement.spentMicros, now });
      yield statement(p.codePrice, { id: settlement.codeId, micros: settlement.spentMicros, final: settlement.final ? 1 : 0, now });
    });
  }

  async budget(period: string): Promise<{ spentMicros: number; reservedMicros: number }> {
    const [row] = (await this.runner.one(statement(this.#p.budget, { period }))).rows;
    return { spentMicros: Number(row?.spent_micros ?? 0), reservedMicros: Number(row?.reserved_micros ?? 0) };
  }

  async recordRefusal(refusal: RefusalRecord): Promise<void> {
    await this.runner.one(
      statement(this.#p.refusal, {
        id: refusal.id,
        now: refusal.createdAt,
        rule: refusal.rule,
        code: refusal.code,
        purpose: refusal.purpose,
        user: refusal.userId,
        country: refusal.country,
        prefix: refusal.phonePrefix,
        ip: refusal.ip,
      }),
    );
  }

  async findCode(id: string): Promise<OtpRecord | null> {
    const row = await this.db.selectFrom("otp_codes").selectAll().where("id", "=", id).executeTakeFirst();
    return row === undefined ? null : fromRow(row);
  }

  async createUser(user: NewUser): Promise<UserRecord | { conflict: "username" | "email" }> {
    try {
      await this.db
        .insertInto("users")
        .values({
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
        })
        .execute();
    } catch (error) {
      const clash = uniqueViolation(error);
      if (clash === null) throw error;
      return { conflict: clash.column === "email" ? "email" : "username" };
    }
    return { ...user, phoneVerified: false, role: "user", tokenVersion: 0 };
  }

  async findUserById(id: string): Promise<UserRecord | null> {
    const row = await this.db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
    return row === undefined ? null : userFromRow(row);
  }

  async findUserByLogin(login: { username?: string; email?: string }): Promise<UserRecord | null> {
    let query = this.db.selectFrom("users").selectAll();
    if (login.username !== undefined) query = query.where("username", "=", login.username);
    else if (login.email !== undefined) query = query.where("email", "=", login.email);
    else return null;
    const row = await query.executeTakeFirst();
    return row === undefined ? null : userFromRow(row);
  }

  async markPhoneVerified(userId: string, phoneNumber: string, now: number): Promise<boolean> {
    const q = this.#q;
    return this.runner.transaction(function* () {
      const marked = yield statement(q.markPhoneVerified, { user: userId, phone: phoneNumber, now });
      if (marked.changes !== 1) return false;
      yield statement(q.unverifyElsewhere, { user: userId, phone: phoneNumber, now });
      return true;
    });
  }

  async findUserByVerifiedPhone(phoneNumber: string): Promise<UserRecord | null> {
    const row = await this.db
      .selectFrom("users")
      .selectAll()
      .where("phone_number", "=", phoneNumber)
      .where("phone_verified", "=", 1)
      .orderBy("updated_at", "desc")
      .executeTakeFirst();
    return row === undefined ? null : userFromRow(row);
  }

  async purge(before: number, options: { batch?: number } = {}): Promise<PurgeResult> {
    const batch = options.batch ?? 5000;
    const deleted: PurgeResult = { codes: 0, refusals: 0, challenges: 0 };
    // Each batch is its own short statement: the oldest `batch` rows by the created_at index.
    const drain = async (table: "otp_codes" | "otp_refusals", key: keyof PurgeResult) => {
      for (;;) {
        const result = await this.db
          .deleteFrom(table)
          .where("id", "in", (eb) => eb.selectFrom(table).select("id").where("created_at", "<", before).orderBy("created_at").limit(batch))
          .executeTakeFirst();
        const n = Number(result.numDeletedRows);
        deleted[key] += n;
        if (n < batch) return;
      }
    };
    await drain("otp_codes", "codes");
    await drain("otp_refusals", "refusals");
    // A challenge is state, not history: gone once its last code expired before the cut-off.
    const challenges = await this.db.deleteFrom("otp_challenges").where("expires_at", "<", before).executeTakeFirst();
    deleted.challenges = Number(challenges.numDeletedRows);
    return deleted;
  }

  async setRole(login: string, role: string, now: number): Promise<UserRecord | null> {
    const key = login.trim().toLowerCase();
    const user = await this.findUserByLogin(key.includes("@") ? { email: key } : { username: key });
    if (user === null) return null;
    await this.db.updateTable("users").set({ role, updated_at: now }).where("id", "=", user.id).execute();
    return { ...user, role };
  }

  async setPassword(userId: string, passwordHash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable("users")
      .set((eb) => ({ password_hash: passwordHash, token_version: eb("token_version", "+", 1), updated_at: now }))
      .where("id", "=", userId)
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }
}

/** Thrown inside beginSend's transaction when the challenge refuses the send: undoes the prelude too. */
class NotOpened extends Error {}

function fromRow(row: Selectable<OtpCodesTable>): OtpRecord {
  return {
    id: row.id,
    userId: row.user_id,
    phoneNumber: row.phone_number,
    purpose: row.purpose as Purpose,
    codeHash: row.code_hash,
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

function userFromRow(row: Selectable<UsersTable>): UserRecord {
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
