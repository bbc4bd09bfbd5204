import type { Kysely } from "kysely";

// Frozen in time: this module must never import application code, so that it runs the same forever.
// Times are BIGINT epoch milliseconds and flags 0/1 integers, one representation on SQLite and PostgreSQL.

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("users")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("username", "text", (c) => c.unique())
    .addColumn("email", "text", (c) => c.unique())
    .addColumn("password_hash", "text", (c) => c.notNull())
    .addColumn("phone_number", "text")
    .addColumn("phone_verified", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("role", "text", (c) => c.notNull().defaultTo("user"))
    .addColumn("token_version", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("otp_codes")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("phone_number", "text", (c) => c.notNull())
    .addColumn("purpose", "text", (c) => c.notNull())
    .addColumn("code_hash", "text", (c) => c.notNull())
    .addColumn("channel", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("verified_at", "bigint")
    .addColumn("provider_message_id", "text")
    .addColumn("provider_error_code", "text")
    .addColumn("delivery_status", "text")
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  // The hot look-up: the newest codes of one challenge.
  await db.schema
    .createIndex("otp_codes_challenge_idx")
    .on("otp_codes")
    .columns(["phone_number", "purpose", "user_id", "created_at"])
    .execute();
  // Status callbacks find their record by the provider's message id.
  await db.schema.createIndex("otp_codes_provider_message_idx").on("otp_codes").column("provider_message_id").execute();
  // Retention and reports scan by time.
  await db.schema.createIndex("otp_codes_created_idx").on("otp_codes").column("created_at").execute();

  await db.schema
    .createTable("otp_challenges")
    .addColumn("phone_number", "text", (c) => c.notNull())
    .addColumn("purpose", "text", (c) => c.notNull())
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull())
    .addColumn("send_count", "integer", (c) => c.notNull())
    .addColumn("last_sent_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("locked_until", "bigint")
    .addColumn("verified_at", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("otp_challenges_pk", ["phone_number", "purpose", "user_id"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("otp_challenges").execute();
  await db.schema.dropTable("otp_codes").execute();
  await db.schema.dropTable("users").execute();
}
