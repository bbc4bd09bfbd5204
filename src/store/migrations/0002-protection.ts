import type { Kysely } from "kysely";

// Frozen in time: this module must never import application code, so that it runs the same forever.

export async function up(db: Kysely<unknown>): Promise<void> {
  // Rate-limit counters of the SQL limiter: one row per bucket, a window that starts at its first hit.
  await db.schema
    .createTable("rate_limits")
    .addColumn("key", "text", (c) => c.primaryKey())
    .addColumn("count", "integer", (c) => c.notNull())
    .addColumn("reset_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("rate_limits_reset_idx").on("rate_limits").column("reset_at").execute();

  // Spend per budget period (`total`, `2026-11`, `2026-11-25`), in millionths of a US dollar.
  await db.schema
    .createTable("sms_budget")
    .addColumn("period", "text", (c) => c.primaryKey())
    .addColumn("spent_micros", "bigint", (c) => c.notNull())
    .addColumn("reserved_micros", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();

  // Every send refused by a protection rule, for the audit trail and the reports.
  await db.schema
    .createTable("otp_refusals")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("rule", "text", (c) => c.notNull())
    .addColumn("code", "text", (c) => c.notNull())
    .addColumn("purpose", "text", (c) => c.notNull())
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("country", "text")
    /** The number without its last four digits: enough to see a pumped range, not a person. */
    .addColumn("phone_prefix", "text")
    .addColumn("ip", "text")
    .execute();
  await db.schema.createIndex("otp_refusals_created_idx").on("otp_refusals").column("created_at").execute();

  // What each message cost: the estimate reserved before the send, replaced by the provider's price.
  await db.schema.alterTable("otp_codes").addColumn("country", "text").execute();
  await db.schema.alterTable("otp_codes").addColumn("price_micros", "bigint").execute();
  await db.schema
    .alterTable("otp_codes")
    .addColumn("price_final", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("otp_codes").dropColumn("price_final").execute();
  await db.schema.alterTable("otp_codes").dropColumn("price_micros").execute();
  await db.schema.alterTable("otp_codes").dropColumn("country").execute();
  await db.schema.dropTable("otp_refusals").execute();
  await db.schema.dropTable("sms_budget").execute();
  await db.schema.dropTable("rate_limits").execute();
}
