import type { Kysely } from "kysely";

// Frozen in time: this module must never import application code, so that it runs the same forever.

/**
 * The Twilio Verify v2-compatible API (`/v2`): its services, verifications, and the rate limits a service
 * defines with their buckets. A verification's send attempts are rows of otp_codes (purpose
 * `verify:<service sid>`, user_id the verification's sid), so delivery tracking, the budget, analytics and
 * retention see them like any other code. A verification keeps no code and no MAC: the code is derived from
 * the server's key and `nonce` when it is sent and when it is checked. `pending_to` is `to_addr` while the
 * verification is pending and null after: the unique index makes one pending verification per service and
 * address, which any number of instances may race for.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("verify_services")
    .addColumn("sid", "text", (c) => c.primaryKey())
    .addColumn("friendly_name", "text", (c) => c.notNull())
    .addColumn("code_length", "integer", (c) => c.notNull())
    .addColumn("settings", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createTable("verifications")
    .addColumn("sid", "text", (c) => c.primaryKey())
    .addColumn("service_sid", "text", (c) => c.notNull())
    .addColumn("to_addr", "text", (c) => c.notNull())
    .addColumn("pending_to", "text")
    .addColumn("channel", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("nonce", "text", (c) => c.notNull())
    .addColumn("key_id", "text", (c) => c.notNull())
    .addColumn("code_length", "integer", (c) => c.notNull())
    .addColumn("locale", "text")
    .addColumn("send_count", "integer", (c) => c.notNull())
    .addColumn("check_count", "integer", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("verifications_pending_idx").on("verifications").columns(["service_sid", "pending_to"]).unique().execute();
  await db.schema.createIndex("verifications_created_idx").on("verifications").column("created_at").execute();
  await db.schema
    .createTable("verify_rate_limits")
    .addColumn("sid", "text", (c) => c.primaryKey())
    .addColumn("service_sid", "text", (c) => c.notNull())
    .addColumn("unique_name", "text", (c) => c.notNull())
    .addColumn("description", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("verify_rate_limits_name_idx")
    .on("verify_rate_limits")
    .columns(["service_sid", "unique_name"])
    .unique()
    .execute();
  await db.schema
    .createTable("verify_buckets")
    .addColumn("sid", "text", (c) => c.primaryKey())
    .addColumn("rate_limit_sid", "text", (c) => c.notNull())
    .addColumn("service_sid", "text", (c) => c.notNull())
    .addColumn("max", "integer", (c) => c.notNull())
    .addColumn("interval", "integer", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("verify_buckets_interval_idx")
    .on("verify_buckets")
    .columns(["rate_limit_sid", "interval"])
    .unique()
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ["verify_buckets", "verify_rate_limits", "verifications", "verify_services"]) {
    await db.schema.dropTable(table).execute();
  }
}
