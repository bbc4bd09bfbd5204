import { type Kysely, SqliteAdapter, sql } from "kysely";

// Frozen in time: this module must never import application code, so that it runs the same forever.

/**
 * Each code records the id of the key its MAC was made under (OTP_SECRETS), and a MAC may be cleared: a
 * code that can no longer verify keeps no offline target for someone who later holds the database and the
 * key. The codes already finished lose their MAC now. SQLite cannot drop a NOT NULL, so its table is
 * rebuilt, with the same indexes.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof SqliteAdapter) await rebuildSqlite(db);
  else {
    await sql`alter table otp_codes alter column code_hash drop not null`.execute(db);
    await sql`alter table otp_codes add column key_id text`.execute(db);
  }
  await sql`update otp_codes set code_hash = null where status not in ('pending', 'sent')`.execute(db);
}

async function rebuildSqlite(db: Kysely<unknown>): Promise<void> {
  await sql`create table otp_codes_new (
    id text primary key, user_id text not null, phone_number text not null, purpose text not null,
    code_hash text, channel text not null, status text not null, created_at bigint not null, expires_at bigint not null,
    verified_at bigint, provider_message_id text, provider_error_code text, delivery_status text, updated_at bigint not null,
    country text, price_micros bigint, price_final integer default 0 not null, fallback_from text, key_id text
  )`.execute(db);
  await sql`insert into otp_codes_new (id, user_id, phone_number, purpose, code_hash, channel, status, created_at, expires_at,
      verified_at, provider_message_id, provider_error_code, delivery_status, updated_at, country, price_micros, price_final, fallback_from)
    select id, user_id, phone_number, purpose, code_hash, channel, status, created_at, expires_at,
      verified_at, provider_message_id, provider_error_code, delivery_status, updated_at, country, price_micros, price_final, fallback_from
    from otp_codes`.execute(db);
  await sql`drop table otp_codes`.execute(db);
  await sql`alter table otp_codes_new rename to otp_codes`.execute(db);
  await sql`create index otp_codes_challenge_idx on otp_codes (phone_number, purpose, user_id, created_at)`.execute(db);
  await sql`create index otp_codes_created_idx on otp_codes (created_at)`.execute(db);
  await sql`create index otp_codes_provider_message_idx on otp_codes (provider_message_id) where provider_message_id is not null`.execute(
    db,
  );
}

export async function down(_db: Kysely<unknown>): Promise<void> {
  // Cleared MACs cannot come back; the column stays nullable.
}
