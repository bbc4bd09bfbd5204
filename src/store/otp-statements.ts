import { type Kysely, sql } from "kysely";
import { DELIVERY_RANK, type OtpStatus } from "../records.js";
import { type Prepared, prepare } from "./prepared.js";
import type { Database } from "./schema.js";

// Constants go into the SQL as literals: SQLite plans `status in ('pending', 'sent')` once, but builds a
// temporary table on every run for a list of bound parameters (three times slower on the hot look-up).
const LIVE = [sql.lit<OtpStatus>("pending"), sql.lit<OtpStatus>("sent")];

/** One compiled statement per value of `keep` (a small constant): LIMIT is written as a literal too. */
export function perKeep<P extends object>(build: (keep: number) => Prepared<P>): (keep: number) => Prepared<P> {
  const compiled = new Map<number, Prepared<P>>();
  return (keep) => {
    if (!Number.isSafeInteger(keep) || keep < 1) throw new RangeError(`keep must be a positive integer (got ${keep})`);
    let query = compiled.get(keep);
    if (query === undefined) {
      query = build(keep);
      compiled.set(keep, query);
    }
    return query;
  };
}

export interface OpenValues extends Challenge {
  now: number;
  expiresAt: number;
  baseMs: number;
  maxMs: number;
  sendsToMax: number;
  exempt: number;
}

export interface CodeValues {
  id: string;
  codeHash: string | null;
  keyId: string;
  channel: string;
  status: string;
  createdAt: number;
  verifiedAt: number | null;
  providerMessageId: string | null;
  providerErrorCode: string | null;
  deliveryStatus: string | null;
  country: string | null;
  priceMicros: number | null;
}

/**
 * Creates the challenge, or renews it only if the cooldown is over and it is not locked. A challenge
 * that is over (expired, verified or locked) starts again with no tries spent. No row: refused.
 */
export function openChallenge(p: OpenValues) {
  return sql`insert into otp_challenges
    (phone_number, purpose, user_id, attempts, send_count, last_sent_at, expires_at, locked_until, verified_at, created_at)
  values (${p.phone}, ${p.purpose}, ${p.user}, 0, 1, ${p.now}, ${p.expiresAt}, null, null, ${p.now})
  on conflict (phone_number, purpose, user_id) do update set
    attempts = case
      when otp_challenges.expires_at <= ${p.now} or otp_challenges.verified_at is not null
        or otp_challenges.locked_until is not null then 0
      else otp_challenges.attempts end,
    send_count = case
      when otp_challenges.expires_at <= ${p.now} or otp_challenges.verified_at is not null
        or otp_challenges.locked_until is not null then 1
      else otp_challenges.send_count + 1 end,
    last_sent_at = ${p.now},
    expires_at = case when otp_challenges.expires_at > ${p.expiresAt}
      and otp_challenges.verified_at is null and otp_challenges.locked_until is null
      then otp_challenges.expires_at else ${p.expiresAt} end,
    locked_until = null,
    verified_at = null
  where (${p.exempt} = 1 or otp_challenges.last_sent_at + case
      when otp_challenges.expires_at <= ${p.now} or otp_challenges.verified_at is not null
        or otp_challenges.locked_until is not null then ${p.baseMs}
      when otp_challenges.send_count >= ${p.sendsToMax} then ${p.maxMs}
      else ${p.baseMs} * (1 << (otp_challenges.send_count - 1)) end <= ${p.now})
    and (${p.exempt} = 1 or otp_challenges.locked_until is null or otp_challenges.locked_until <= ${p.now})
  returning attempts, send_count`;
}

export interface DeliveryValues {
  id: string;
  channel: string | null;
  fallbackFrom: string | null;
  status: OtpStatus;
  now: number;
  providerMessageId: string | null;
  providerErrorCode: string | null;
  deliveryStatus: string | null;
}

export interface Challenge {
  phone: string;
  purpose: string;
  user: string;
}

/** The statements of sends and tries, compiled once per store (see prepared.ts). */
export function otpStatements(db: Kysely<Database>) {
  return {
    /** See openChallenge above. */
    openChallenge: prepare<OpenValues>((p) => ({ compile: () => openChallenge(p).compile(db) })),

    insertCode: prepare<{
      id: string;
      user: string;
      phone: string;
      purpose: string;
      codeHash: string | null;
      keyId: string;
      channel: string;
      status: string;
      createdAt: number;
      expiresAt: number;
      verifiedAt: number | null;
      providerMessageId: string | null;
      providerErrorCode: string | null;
      deliveryStatus: string | null;
      country: string | null;
      priceMicros: number | null;
    }>((p) =>
      db.insertInto("otp_codes").values({
        id: p.id,
        user_id: p.user,
        phone_number: p.phone,
        purpose: p.purpose,
        code_hash: p.codeHash,
        channel: p.channel,
        status: p.status,
        created_at: p.createdAt,
        expires_at: p.expiresAt,
        verified_at: p.verifiedAt,
        provider_message_id: p.providerMessageId,
        provider_error_code: p.providerErrorCode,
        delivery_status: p.deliveryStatus,
        updated_at: p.createdAt,
        country: p.country,
        price_micros: p.priceMicros,
        price_final: sql.lit(0),
        key_id: p.keyId,
      }),
    ),

    /** Supersedes the challenge's live codes beyond the newest `keep`. */
    supersedeOlder: perKeep((keep) =>
      prepare<Challenge & { now: number }>((p) => {
        const newest = db
          .selectFrom("otp_codes")
          .select("id")
          .where("phone_number", "=", p.phone)
          .where("purpose", "=", p.purpose)
          .where("user_id", "=", p.user)
          .where("status", "in", LIVE)
          .orderBy("created_at", "desc")
          .orderBy("id", "desc")
          .limit(sql.lit(keep));
        return db
          .updateTable("otp_codes")
          .set({ status: "superseded", code_hash: null, updated_at: p.now })
          .where("phone_number", "=", p.phone)
          .where("purpose", "=", p.purpose)
          .where("user_id", "=", p.user)
          .where("status", "in", LIVE)
          .where("id", "not in", newest);
      }),
    ),

    /** The challenge as it is, for the reason of a refusal. */
    challengeState: prepare<Challenge>((p) =>
      db
        .selectFrom("otp_challenges")
        .select(["attempts", "send_count", "last_sent_at", "expires_at", "locked_until", "verified_at"])
        .where("phone_number", "=", p.phone)
        .where("purpose", "=", p.purpose)
        .where("user_id", "=", p.user),
    ),

    /** The challenge's newest code, whatever its state (the audit trail of a refused try). */
    newestCode: prepare<Challenge>((p) =>
      db
        .selectFrom("otp_codes")
        .select(["id", "channel"])
        .where("phone_number", "=", p.phone)
        .where("purpose", "=", p.purpose)
        .where("user_id", "=", p.user)
        .orderBy("created_at", "desc")
        .orderBy("id", "desc")
        .limit(1),
    ),

    /** Counts one try, guarded by the budget; locks the challenge's row on PostgreSQL. No row: refused. */
    countTry: prepare<Challenge & { maxAttempts: number; now: number }>((p) =>
      db
        .updateTable("otp_challenges")
        .set((eb) => ({ attempts: eb("attempts", "+", 1) }))
        .where("phone_number", "=", p.phone)
        .where("purpose", "=", p.purpose)
        .where("user_id", "=", p.user)
        .where("attempts", "<", p.maxAttempts)
        .where("expires_at", ">", p.now)
        .where("verified_at", "is", null)
        .where("locked_until", "is", null)
        .returning("attempts"),
    ),

    liveCodes: perKeep((keep) =>
      prepare<Challenge>((p) =>
        db
          .selectFrom("otp_codes")
          .select(["id", "code_hash", "key_id", "expires_at", "channel"])
          .where("phone_number", "=", p.phone)
          .where("purpose", "=", p.purpose)
          .where("user_id", "=", p.user)
          .where("status", "in", LIVE)
          .orderBy("created_at", "desc")
          .orderBy("id", "desc")
          .limit(sql.lit(keep)),
      ),
    ),

    /** Marks the code verified, guarded by its status and expiry: one winner however many race. */
    consumeCode: prepare<{ id: string; now: number }>((p) =>
      db
        .updateTable("otp_codes")
        .set({ status: "verified", verified_at: p.now, code_hash: null, updated_at: p.now })
        .where("id", "=", p.id)
        .where("status", "in", LIVE)
        .where("expires_at", ">", p.now),
    ),

    closeChallenge: prepare<Challenge & { now: number }>((p) =>
      db
        .updateTable("otp_challenges")
        .set({ verified_at: p.now })
        .where("phone_number", "=", p.phone)
        .where("purpose", "=", p.purpose)
        .where("user_id", "=", p.user),
    ),

    lockChallenge: prepare<Challenge & { until: number }>((p) =>
      db
        .updateTable("otp_challenges")
        .set({ locked_until: p.until })
        .where("phone_number", "=", p.phone)
        .where("purpose", "=", p.purpose)
        .where("user_id", "=", p.user)
        .where("verified_at", "is", null),
    ),

    /** Ends every live code of the challenge with `status` (superseded or locked). */
    retireLive: prepare<Challenge & { status: OtpStatus; now: number }>((p) =>
      db
        .updateTable("otp_codes")
        .set({ status: p.status, code_hash: null, updated_at: p.now })
        .where("phone_number", "=", p.phone)
        .where("purpose", "=", p.purpose)
        .where("user_id", "=", p.user)
        .where("status", "in", LIVE),
    ),

    markPhoneVerified: prepare<{ user: string; phone: string; now: number }>((p) =>
      db.updateTable("users").set({ phone_number: p.phone, phone_verified: 1, updated_at: p.now }).where("id", "=", p.user),
    ),

    /** A verified number belongs to one account: the one that verified it last. */
    unverifyElsewhere: prepare<{ user: string; phone: string; now: number }>((p) =>
      db
        .updateTable("users")
        .set({ phone_verified: 0, updated_at: p.now })
        .where("phone_number", "=", p.phone)
        .where("phone_verified", "=", 1)
        .where("id", "<>", p.user),
    ),

    /**
     * A status callback: moves the delivery status forward only (DELIVERY_RANK), so replays and late
     * callbacks change nothing; the provider's error code is kept when the callback carries one.
     */
    deliveryCallback: prepare<{ sid: string; status: string; rank: number; errorCode: string | null; now: number }>((p) => ({
      compile: () =>
        sql`update otp_codes set delivery_status = ${p.status}, updated_at = ${p.now},
            provider_error_code = coalesce(${p.errorCode}, provider_error_code)
          where provider_message_id = ${p.sid}
            and (case delivery_status ${sql.join(
              Object.entries(DELIVERY_RANK).map(([status, rank]) => sql`when ${sql.lit(status)} then ${sql.lit(rank)}`),
              sql` `,
            )} else 0 end) < ${p.rank}`.compile(db),
    })),

    /**
     * The provider's answer. A null leaves the column as it was; a code verified or retired meanwhile
     * keeps its final state.
     */
    updateDelivery: prepare<DeliveryValues>((p) =>
      db
        .updateTable("otp_codes")
        .set((eb) => ({
          status: p.status,
          updated_at: p.now,
          provider_message_id: eb.fn.coalesce(eb.val(p.providerMessageId), eb.ref("provider_message_id")),
          provider_error_code: eb.fn.coalesce(eb.val(p.providerErrorCode), eb.ref("provider_error_code")),
          delivery_status: eb.fn.coalesce(eb.val(p.deliveryStatus), eb.ref("delivery_status")),
          channel: eb.fn.coalesce(eb.val(p.channel), eb.ref("channel")),
          fallback_from: eb.fn.coalesce(eb.val(p.fallbackFrom), eb.ref("fallback_from")),
          // A code that failed to go out can never verify: it keeps no MAC.
          code_hash: sql<string | null>`case when ${p.status} = 'failed' then null else code_hash end`,
        }))
        .where("id", "=", p.id)
        .where("status", "in", LIVE),
    ),
  };
}

export type OtpStatements = ReturnType<typeof otpStatements>;
