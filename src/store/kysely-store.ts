import { Kysely, Migrator, type Selectable, sql } from "kysely";
import type { DatabaseConfig } from "../config.js";
import type { ChallengeKey, ChallengeState, OtpRecord, OtpStatus, Purpose } from "../otp/types.js";
import { createDialect, type DialectOptions, uniqueViolation } from "./dialect.js";
import { migrationProvider } from "./migrations/index.js";
import type { Database, OtpCodesTable, UsersTable } from "./schema.js";
import type { DeliveryUpdate, LiveCode, NewUser, SendRule, Store, UserRecord, VerifyRule, VerifyTry } from "./store.js";

// Constants go into the SQL as literals: SQLite plans `status in ('pending', 'sent')` once, but builds a
// temporary table on every run for a list of bound parameters (three times slower on the hot look-up).
const LIVE = [sql.lit<OtpStatus>("pending"), sql.lit<OtpStatus>("sent")];

/** The Store on Kysely: the same SQL on SQLite and PostgreSQL, dialect quirks kept in dialect.ts. */
export class KyselyStore implements Store {
  readonly dialect: "sqlite" | "postgres";
  readonly db: Kysely<Database>;

  constructor(database: DatabaseConfig, options: DialectOptions = {}) {
    const info = createDialect(database, options);
    this.dialect = info.name;
    this.db = new Kysely<Database>({ dialect: info.dialect });
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
    await this.db.destroy();
  }

  async beginSend(record: OtpRecord, now: number, rule: SendRule): Promise<{ attempts: number; sendCount: number } | null> {
    const earliest = now - rule.cooldownMs;
    const exempt = rule.exempt ? 1 : 0;
    const { expiresAt } = record;
    return this.db.transaction().execute(async (trx) => {
      // First statement, and a write: create the challenge, or renew it only if the cooldown is over and it
      // is not locked. A challenge that is over (expired, verified or locked) starts again with no tries spent.
      const result = await sql<{ attempts: number; send_count: number }>`
        insert into otp_challenges
          (phone_number, purpose, user_id, attempts, send_count, last_sent_at, expires_at, locked_until, verified_at, created_at)
        values (${record.phoneNumber}, ${record.purpose}, ${record.userId}, 0, 1, ${now}, ${expiresAt}, null, null, ${now})
        on conflict (phone_number, purpose, user_id) do update set
          attempts = case
            when otp_challenges.expires_at <= ${now} or otp_challenges.verified_at is not null
              or otp_challenges.locked_until is not null then 0
            else otp_challenges.attempts end,
          send_count = case
            when otp_challenges.expires_at <= ${now} or otp_challenges.verified_at is not null
              or otp_challenges.locked_until is not null then 1
            else otp_challenges.send_count + 1 end,
          last_sent_at = ${now},
          expires_at = case when otp_challenges.expires_at > ${expiresAt}
            and otp_challenges.verified_at is null and otp_challenges.locked_until is null
            then otp_challenges.expires_at else ${expiresAt} end,
          locked_until = null,
          verified_at = null
        where (${exempt} = 1 or otp_challenges.last_sent_at <= ${earliest})
          and (${exempt} = 1 or otp_challenges.locked_until is null or otp_challenges.locked_until <= ${now})
        returning attempts, send_count`.execute(trx);
      const row = result.rows[0];
      if (row === undefined) return null;
      const opened = { attempts: Number(row.attempts), sendCount: Number(row.send_count) };
      await trx.insertInto("otp_codes").values(toRow(record)).execute();
      // Nothing to retire until the challenge has had more sends than live codes.
      if (opened.sendCount > rule.keepLive) await supersedeOlder(trx, record, rule.keepLive);
      return opened;
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
  ): Promise<VerifyTry> {
    return this.db.transaction().execute(async (trx): Promise<VerifyTry> => {
      // Counted before the comparison, in one guarded UPDATE that also locks the challenge's row on
      // PostgreSQL: the budget can never be overrun, and tries of one challenge take turns.
      const slot = await trx
        .updateTable("otp_challenges")
        .set((eb) => ({ attempts: eb("attempts", "+", 1) }))
        .where("phone_number", "=", key.phoneNumber)
        .where("purpose", "=", key.purpose)
        .where("user_id", "=", key.userId)
        .where("attempts", "<", rule.maxAttempts)
        .where("expires_at", ">", now)
        .where("verified_at", "is", null)
        .where("locked_until", "is", null)
        .returning("attempts")
        .executeTakeFirst();
      if (slot === undefined) return { kind: "refused" };
      const rows = await trx
        .selectFrom("otp_codes")
        .select(["id", "code_hash", "expires_at"])
        .where("phone_number", "=", key.phoneNumber)
        .where("purpose", "=", key.purpose)
        .where("user_id", "=", key.userId)
        .where("status", "in", LIVE)
        .orderBy("created_at", "desc")
        .orderBy("id", "desc")
        .limit(sql.lit(rule.keepLive))
        .execute();
      const codes = rows.map((row) => ({ id: row.id, codeHash: row.code_hash, expiresAt: Number(row.expires_at) }));
      const picked = match(codes);
      if (picked === undefined) return { kind: "mismatch", attempts: Number(slot.attempts), codes };
      // The status guard keeps this the single winner even if the row lock above were ever lifted.
      const result = await trx
        .updateTable("otp_codes")
        .set({ status: "verified", verified_at: now, updated_at: now })
        .where("id", "=", picked.id)
        .where("status", "in", LIVE)
        .where("expires_at", ">", now)
        .executeTakeFirst();
      if (result.numUpdatedRows !== 1n) return { kind: "refused" };
      await trx
        .updateTable("otp_challenges")
        .set({ verified_at: now })
        .where("phone_number", "=", key.phoneNumber)
        .where("purpose", "=", key.purpose)
        .where("user_id", "=", key.userId)
        .execute();
      if (codes.length > 1) await retireLive(trx, key, "superseded", now);
      if (rule.markPhoneVerified) await markVerified(trx, key.userId, key.phoneNumber, now);
      return { kind: "verified", id: picked.id };
    });
  }

  async lockChallenge(key: ChallengeKey, until: number, now: number): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable("otp_challenges")
        .set({ locked_until: until })
        .where("phone_number", "=", key.phoneNumber)
        .where("purpose", "=", key.purpose)
        .where("user_id", "=", key.userId)
        .where("verified_at", "is", null)
        .execute();
      await retireLive(trx, key, "locked", now);
    });
  }

  async updateDelivery(id: string, update: DeliveryUpdate, now: number): Promise<void> {
    await this.db
      .updateTable("otp_codes")
      .set({
        status: update.status,
        updated_at: now,
        ...(update.providerMessageId === undefined ? {} : { provider_message_id: update.providerMessageId }),
        ...(update.providerErrorCode === undefined ? {} : { provider_error_code: update.providerErrorCode }),
        ...(update.deliveryStatus === undefined ? {} : { delivery_status: update.deliveryStatus }),
      })
      .where("id", "=", id)
      // A code verified or retired meanwhile keeps its final state; only its delivery facts are added.
      .where("status", "in", LIVE)
      .execute();
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
    return markVerified(this.db, userId, phoneNumber, now);
  }
}

async function markVerified(db: Kysely<Database>, userId: string, phoneNumber: string, now: number): Promise<boolean> {
  const result = await db
    .updateTable("users")
    .set({ phone_number: phoneNumber, phone_verified: 1, updated_at: now })
    .where("id", "=", userId)
    .executeTakeFirst();
  return result.numUpdatedRows === 1n;
}

/** Supersedes the challenge's live codes beyond the newest `keepLive`. */
async function supersedeOlder(trx: Kysely<Database>, record: OtpRecord, keepLive: number): Promise<void> {
  const newest = trx
    .selectFrom("otp_codes")
    .select("id")
    .where("phone_number", "=", record.phoneNumber)
    .where("purpose", "=", record.purpose)
    .where("user_id", "=", record.userId)
    .where("status", "in", LIVE)
    .orderBy("created_at", "desc")
    .orderBy("id", "desc")
    .limit(sql.lit(keepLive));
  await trx
    .updateTable("otp_codes")
    .set({ status: "superseded", updated_at: record.createdAt })
    .where("phone_number", "=", record.phoneNumber)
    .where("purpose", "=", record.purpose)
    .where("user_id", "=", record.userId)
    .where("status", "in", LIVE)
    .where("id", "not in", newest)
    .execute();
}

async function retireLive(trx: Kysely<Database>, key: ChallengeKey, status: OtpStatus, now: number): Promise<void> {
  await trx
    .updateTable("otp_codes")
    .set({ status, updated_at: now })
    .where("phone_number", "=", key.phoneNumber)
    .where("purpose", "=", key.purpose)
    .where("user_id", "=", key.userId)
    .where("status", "in", LIVE)
    .execute();
}

function toRow(record: OtpRecord): OtpCodesTable {
  return {
    id: record.id,
    user_id: record.userId,
    phone_number: record.phoneNumber,
    purpose: record.purpose,
    code_hash: record.codeHash,
    channel: record.channel,
    status: record.status,
    created_at: record.createdAt,
    expires_at: record.expiresAt,
    verified_at: record.verifiedAt,
    provider_message_id: record.providerMessageId,
    provider_error_code: record.providerErrorCode,
    delivery_status: record.deliveryStatus,
    updated_at: record.createdAt,
  };
}

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
