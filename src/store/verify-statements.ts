import { type Kysely, sql } from "kysely";
import { prepare } from "./prepared.js";
import type { Database } from "./schema.js";

/** What a start opens a verification with. */
export interface OpenValues {
  sid: string;
  service: string;
  to: string;
  channel: string;
  nonce: string;
  keyId: string;
  codeLength: number;
  locale: string | null;
  now: number;
  expiresAt: number;
  maxSends: number;
}

/** A new verification's row: pending for its address, one send, no check. */
function verificationRow(p: OpenValues) {
  return {
    sid: p.sid,
    service_sid: p.service,
    to_addr: p.to,
    pending_to: p.to,
    channel: p.channel,
    status: "pending",
    nonce: p.nonce,
    key_id: p.keyId,
    code_length: p.codeLength,
    locale: p.locale,
    send_count: 1,
    check_count: 0,
    created_at: p.now,
    updated_at: p.now,
    expires_at: p.expiresAt,
  };
}

/** The /v2 API's hot statements (a start, a check, a read of a service), compiled once per database. */
export function verifyStatements(db: Kysely<Database>) {
  const verification = () => db.selectFrom("verifications").selectAll();
  const pending = (p: { sid: string }) =>
    db.updateTable("verifications").where("sid", "=", p.sid).where("status", "=", "pending").where("pending_to", "is not", null);
  return {
    service: prepare<{ sid: string }>((p) => db.selectFrom("verify_services").selectAll().where("sid", "=", p.sid)),
    /** A pending verification whose time is over is marked expired when a start meets it. */
    expire: prepare<{ service: string; to: string; now: number }>((p) =>
      db
        .updateTable("verifications")
        .set({ status: "expired", pending_to: null, updated_at: p.now })
        .where("service_sid", "=", p.service)
        .where("pending_to", "=", p.to)
        .where("expires_at", "<=", p.now),
    ),
    /**
     * A new verification, or one more send on the pending one while it has sends and time left: one
     * statement, so parallel starts for one address end on one verification. No row: the pending one is out
     * of sends, or of time (then `expire` it and open again). A start's second step on either database;
     * PostgreSQL's batched form is postgres/verify-batch.ts's `openAll`, SQLite's common case openInProcess
     * (verify-store.ts), with the two statements below.
     */
    open: prepare<OpenValues>((p) =>
      db
        .insertInto("verifications")
        .values(verificationRow(p))
        .onConflict((oc) =>
          oc
            .columns(["service_sid", "pending_to"])
            .doUpdateSet((eb) => ({ send_count: eb("verifications.send_count", "+", 1), channel: p.channel, updated_at: p.now }))
            .where("verifications.send_count", "<", p.maxSends)
            .where("verifications.expires_at", ">", p.now),
        )
        .returningAll(),
    ),
    /** A new verification, where none is pending for the address (read in the same SQLite transaction). */
    insertPending: prepare<OpenValues>((p) => db.insertInto("verifications").values(verificationRow(p))),
    /** One more send on a pending verification while it has sends and time left (`open`'s update, alone). */
    addSend: prepare<{ sid: string; channel: string; now: number; maxSends: number }>((p) =>
      db
        .updateTable("verifications")
        .set((eb) => ({ send_count: eb("send_count", "+", 1), channel: p.channel, updated_at: p.now }))
        .where("sid", "=", p.sid)
        .where("status", "=", "pending")
        .where("pending_to", "is not", null)
        .where("send_count", "<", p.maxSends)
        .where("expires_at", ">", p.now),
    ),
    pendingOf: prepare<{ service: string; to: string }>((p) =>
      verification().where("service_sid", "=", p.service).where("pending_to", "=", p.to),
    ),
    bySid: prepare<{ service: string; sid: string }>((p) => verification().where("sid", "=", p.sid).where("service_sid", "=", p.service)),
    /** A send attempt: a row of otp_codes with no MAC (the code is derived, never stored). */
    attempt: prepare<{
      sid: string;
      verification: string;
      to: string;
      purpose: string;
      keyId: string;
      channel: string;
      now: number;
      expiresAt: number;
      country: string | null;
      priceMicros: number | null;
    }>((p) =>
      db.insertInto("otp_codes").values({
        id: p.sid,
        user_id: p.verification,
        phone_number: p.to,
        purpose: p.purpose,
        code_hash: null,
        key_id: p.keyId,
        channel: p.channel,
        status: "pending",
        created_at: p.now,
        expires_at: p.expiresAt,
        verified_at: null,
        provider_message_id: null,
        provider_error_code: null,
        delivery_status: null,
        updated_at: p.now,
        country: p.country,
        price_micros: p.priceMicros,
        price_final: 0,
      }),
    ),
    attempts: prepare<{ to: string; purpose: string; verification: string }>((p) =>
      db
        .selectFrom("otp_codes")
        .select(["id", "channel", "created_at"])
        .where("phone_number", "=", p.to)
        .where("purpose", "=", p.purpose)
        .where("user_id", "=", p.verification)
        .orderBy("created_at")
        .orderBy("id"),
    ),
    /**
     * One check counted on the pending verification of an address (or of a sid) while it has time and
     * checks left, and the verification read: one statement. No row: there is none, or it is over.
     */
    countByTo: prepare<{ service: string; to: string; now: number; maxChecks: number }>((p) =>
      db
        .updateTable("verifications")
        .set((eb) => ({ check_count: eb("check_count", "+", 1), updated_at: p.now }))
        .where("service_sid", "=", p.service)
        .where("pending_to", "=", p.to)
        .where("status", "=", "pending")
        .where("expires_at", ">", p.now)
        .where("check_count", "<", p.maxChecks)
        .returningAll(),
    ),
    countBySid: prepare<{ service: string; sid: string; now: number; maxChecks: number }>((p) =>
      db
        .updateTable("verifications")
        .set((eb) => ({ check_count: eb("check_count", "+", 1), updated_at: p.now }))
        .where("sid", "=", p.sid)
        .where("service_sid", "=", p.service)
        .where("status", "=", "pending")
        .where("pending_to", "is not", null)
        .where("expires_at", ">", p.now)
        .where("check_count", "<", p.maxChecks)
        .returningAll(),
    ),
    /**
     * One check counted and, when the code matched (`approve` 1), the verification approved, in one
     * statement guarded by everything a check needs: pending, time and checks left. No change: it changed
     * since it was read. No RETURNING (SQLite, the one database that runs it, makes a temporary table
     * for one): the row after it is the row read before with these changes (verify-store.ts, checkStep).
     */
    checkOnce: prepare<{ sid: string; now: number; maxChecks: number; approve: number }>((p) =>
      db
        .updateTable("verifications")
        .set((eb) => ({
          check_count: eb("check_count", "+", 1),
          updated_at: p.now,
          status: sql<string>`case when cast(${p.approve} as integer) = 1 then 'approved' else status end`,
          pending_to: sql<string | null>`case when cast(${p.approve} as integer) = 1 then null else pending_to end`,
        }))
        .where("sid", "=", p.sid)
        .where("status", "=", "pending")
        .where("pending_to", "is not", null)
        .where("expires_at", ">", p.now)
        .where("check_count", "<", p.maxChecks),
    ),
    markExpired: prepare<{ sid: string; now: number }>((p) => pending(p).set({ status: "expired", pending_to: null, updated_at: p.now })),
    spent: prepare<{ sid: string; now: number }>((p) =>
      pending(p).set({ status: "max_attempts_reached", pending_to: null, updated_at: p.now }),
    ),
    approve: prepare<{ sid: string; now: number }>((p) =>
      pending(p).set({ status: "approved", pending_to: null, updated_at: p.now }).returning("sid"),
    ),
    /**
     * The newest send attempt of a verification is the code that verified: analytics count it. A scalar
     * subquery with a literal limit: SQLite ran `id in (… limit ?)` at 15-40 µs a row against 3-8 µs
     * for this form (a list subquery's temporary table, and a limit it cannot plan for).
     */
    markVerified: prepare<{ to: string; purpose: string; verification: string; now: number }>((p) =>
      db
        .updateTable("otp_codes")
        .set({ status: "verified", verified_at: p.now, updated_at: p.now })
        .where(
          "id",
          "=",
          db
            .selectFrom("otp_codes")
            .select("id")
            .where("phone_number", "=", p.to)
            .where("purpose", "=", p.purpose)
            .where("user_id", "=", p.verification)
            .orderBy("created_at", "desc")
            .orderBy("id", "desc")
            .limit(sql.lit(1)),
        ),
    ),
  };
}

export type VerifyStatements = ReturnType<typeof verifyStatements>;

/** A start's first step: `open`'s values, and the send attempt's row (see VerifyHotPath.open). */
export interface OpenWithAttempt extends OpenValues {
  attempt: string;
  purpose: string;
  attemptChannel: string;
  country: string | null;
  priceMicros: number | null;
}

/** The values of `attempt`: the send attempt's row, on the verification `open` answered. */
export function attemptValues(values: OpenWithAttempt, opened: { sid: string; key_id: string; expires_at: number }) {
  return {
    sid: values.attempt,
    verification: opened.sid,
    to: values.to,
    purpose: values.purpose,
    keyId: opened.key_id,
    channel: values.attemptChannel,
    now: values.now,
    expiresAt: Number(opened.expires_at),
    country: values.country,
    priceMicros: values.priceMicros,
  };
}
