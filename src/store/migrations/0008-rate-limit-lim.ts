import type { Kysely } from "kysely";

// Frozen in time: this module must never import application code, so that it runs the same forever.

/**
 * A bucket's row carries the limit it was last taken under. The multi-bucket take on SQLite inserts it
 * with the row, so its conflict clause compares with `excluded.lim` instead of looking the limit up in
 * the statement's list of buckets for every row (measured: a third cheaper). Nothing reads it otherwise.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("rate_limits").addColumn("lim", "bigint").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("rate_limits").dropColumn("lim").execute();
}
