import { type Kysely, sql } from "kysely";

// Frozen in time: this module must never import application code, so that it runs the same forever.

/**
 * Status callbacks find a code by its provider's message id, which a code has only once the provider
 * accepted it (and never on the console or a test number). The index keeps only the codes that have one:
 * a new code, inserted without it, no longer writes to this index at all.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("otp_codes_provider_message_idx").execute();
  await db.schema
    .createIndex("otp_codes_provider_message_idx")
    .on("otp_codes")
    .column("provider_message_id")
    .where(sql.ref("provider_message_id"), "is not", null)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("otp_codes_provider_message_idx").execute();
  await db.schema.createIndex("otp_codes_provider_message_idx").on("otp_codes").column("provider_message_id").execute();
}
