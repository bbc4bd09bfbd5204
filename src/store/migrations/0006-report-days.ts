import type { Kysely } from "kysely";

// Frozen in time: this module must never import application code, so that it runs the same forever.

/**
 * Daily roll-ups of the reports: once a UTC day is over (and late delivery reports and verifications
 * have had time to arrive), its figures are summed per purpose, channel and country, so that reports
 * read a few rows per day instead of every code, and keep their figures after retention deletes the
 * codes. They hold no number, user, code or address: only counts, sums and a histogram.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("report_days")
    .addColumn("day", "bigint", (c) => c.notNull())
    .addColumn("purpose", "text", (c) => c.notNull())
    .addColumn("channel", "text", (c) => c.notNull())
    // '' when the country is not known (the email channel).
    .addColumn("country", "text", (c) => c.notNull())
    .addColumn("sent", "bigint", (c) => c.notNull())
    .addColumn("delivered", "bigint", (c) => c.notNull())
    .addColumn("failed", "bigint", (c) => c.notNull())
    .addColumn("verified", "bigint", (c) => c.notNull())
    .addColumn("expired", "bigint", (c) => c.notNull())
    .addColumn("locked", "bigint", (c) => c.notNull())
    .addColumn("spend_micros", "bigint", (c) => c.notNull())
    // JSON {"<seconds from send to verification>": count}: exact percentiles when merged.
    .addColumn("ttv", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("report_days_pk", ["day", "purpose", "channel", "country"])
    .execute();
  await db.schema
    .createTable("report_day_failures")
    .addColumn("day", "bigint", (c) => c.notNull())
    .addColumn("purpose", "text", (c) => c.notNull())
    .addColumn("channel", "text", (c) => c.notNull())
    .addColumn("country", "text", (c) => c.notNull())
    // '' when the provider gave none.
    .addColumn("error_code", "text", (c) => c.notNull())
    .addColumn("n", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("report_day_failures_pk", ["day", "purpose", "channel", "country", "error_code"])
    .execute();
  await db.schema
    .createTable("report_day_refusals")
    .addColumn("day", "bigint", (c) => c.notNull())
    .addColumn("purpose", "text", (c) => c.notNull())
    .addColumn("country", "text", (c) => c.notNull())
    .addColumn("rule", "text", (c) => c.notNull())
    .addColumn("n", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("report_day_refusals_pk", ["day", "purpose", "country", "rule"])
    .execute();
  // A day rolled up, even an empty one; written in the same transaction as its rows.
  await db.schema
    .createTable("report_rollups")
    .addColumn("day", "bigint", (c) => c.primaryKey())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ["report_rollups", "report_day_refusals", "report_day_failures", "report_days"]) {
    await db.schema.dropTable(table).execute();
  }
}
