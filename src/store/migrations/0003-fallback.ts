import type { Kysely } from "kysely";

// Frozen in time: this module must never import application code, so that it runs the same forever.

export async function up(db: Kysely<unknown>): Promise<void> {
  // The channel that failed first when CHANNEL_FALLBACK sent the code another way.
  await db.schema.alterTable("otp_codes").addColumn("fallback_from", "text").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("otp_codes").dropColumn("fallback_from").execute();
}
