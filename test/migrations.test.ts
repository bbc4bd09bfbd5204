import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, Migrator, SqliteDialect, sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { migrationProvider } from "../src/store/migrations/index.js";

describe("migrations", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("0004 rebuilds the hot tables WITHOUT ROWID on SQLite and keeps their rows", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vericode-migrations-"));
    dirs.push(dir);
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new BetterSqlite3(join(dir, "m.db")) }) });
    const migrator = new Migrator({ db, provider: migrationProvider });
    try {
      expect((await migrator.migrateTo("0003-fallback")).error).toBeUndefined();
      await sql`insert into otp_challenges values ('+50688887777', 'login', 'usr_1', 2, 1, 10, 20, null, null, 5)`.execute(db);
      await sql`insert into rate_limits values ('number:+50688887777', 3, 99)`.execute(db);
      const { error, results } = await migrator.migrateToLatest();
      expect(error).toBeUndefined();
      expect(results?.map((r) => r.migrationName)).toEqual([
        "0004-without-rowid",
        "0005-users-phone",
        "0006-report-days",
        "0007-partial-provider-index",
        "0008-rate-limit-lim",
        "0009-mac-key-id",
        "0010-idempotency-keys",
        "0011-verify",
      ]);
      const tables = await sql<{
        name: string;
        sql: string;
      }>`select name, sql from sqlite_master where type = 'table' and name in ('otp_challenges', 'rate_limits')`.execute(db);
      for (const table of tables.rows) expect(table.sql.toLowerCase()).toContain("without rowid");
      expect((await sql`select * from otp_challenges`.execute(db)).rows).toEqual([
        {
          phone_number: "+50688887777",
          purpose: "login",
          user_id: "usr_1",
          attempts: 2,
          send_count: 1,
          last_sent_at: 10,
          expires_at: 20,
          locked_until: null,
          verified_at: null,
          created_at: 5,
        },
      ]);
      expect((await sql`select * from rate_limits`.execute(db)).rows).toEqual([
        { key: "number:+50688887777", count: 3, reset_at: 99, lim: null },
      ]);
      // And back down, the rows stay.
      expect((await migrator.migrateTo("0003-fallback")).error).toBeUndefined();
      expect((await sql`select count(*) as n from otp_challenges`.execute(db)).rows).toEqual([{ n: 1 }]);
    } finally {
      await db.destroy();
    }
  });

  it("0009 keeps every code through the SQLite rebuild, with its indexes; finished codes lose their MAC", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vericode-migrations-"));
    dirs.push(dir);
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new BetterSqlite3(join(dir, "m.db")) }) });
    const migrator = new Migrator({ db, provider: migrationProvider });
    try {
      expect((await migrator.migrateTo("0008-rate-limit-lim")).error).toBeUndefined();
      for (const [id, status] of [
        ["otp_a", "sent"],
        ["otp_b", "verified"],
        ["otp_c", "superseded"],
      ] as const) {
        await sql`insert into otp_codes (id, user_id, phone_number, purpose, code_hash, channel, status, created_at, expires_at,
          updated_at, provider_message_id, price_final) values (${id}, 'usr_1', '+50688887777', 'login', ${"ab".repeat(32)}, 'sms',
          ${status}, 1, 2, 3, ${`SM${id}`}, 0)`.execute(db);
      }
      expect((await migrator.migrateToLatest()).error).toBeUndefined();
      const rows = await sql<{ id: string; code_hash: string | null; key_id: string | null; provider_message_id: string }>`
        select id, code_hash, key_id, provider_message_id from otp_codes order by id`.execute(db);
      expect(rows.rows).toEqual([
        { id: "otp_a", code_hash: "ab".repeat(32), key_id: null, provider_message_id: "SMotp_a" },
        { id: "otp_b", code_hash: null, key_id: null, provider_message_id: "SMotp_b" },
        { id: "otp_c", code_hash: null, key_id: null, provider_message_id: "SMotp_c" },
      ]);
      const indexes = await sql<{ name: string }>`select name from sqlite_master where type = 'index' and tbl_name = 'otp_codes'
        and name not like 'sqlite_%' order by name`.execute(db);
      expect(indexes.rows.map((r) => r.name)).toEqual([
        "otp_codes_challenge_idx",
        "otp_codes_created_idx",
        "otp_codes_provider_message_idx",
      ]);
    } finally {
      await db.destroy();
    }
  });

  it("0007 keeps only the codes with a provider's message id in its index, and status callbacks still use it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vericode-migrations-"));
    dirs.push(dir);
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new BetterSqlite3(join(dir, "m.db")) }) });
    try {
      expect((await new Migrator({ db, provider: migrationProvider }).migrateToLatest()).error).toBeUndefined();
      const [index] = (await sql<{ sql: string }>`select sql from sqlite_master where name = 'otp_codes_provider_message_idx'`.execute(db))
        .rows;
      expect(index?.sql.toLowerCase()).toContain("where");
      const plan = await sql<{ detail: string }>`explain query plan select id from otp_codes where provider_message_id = ${"SM1"}`.execute(
        db,
      );
      expect(plan.rows.map((row) => row.detail).join(" ")).toContain("otp_codes_provider_message_idx");
    } finally {
      await db.destroy();
    }
  });
});
