import type { Kysely } from "kysely";

// Frozen in time: this module must never import application code, so that it runs the same forever.

export async function up(db: Kysely<unknown>): Promise<void> {
  // Passwordless login and password reset find the account by its verified number.
  await db.schema.createIndex("users_phone_idx").on("users").columns(["phone_number", "phone_verified"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("users_phone_idx").execute();
}
