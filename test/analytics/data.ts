import type { Kysely } from "kysely";
import type { Database } from "../../src/store/schema.js";

/** 2026-11-01T00:00:00Z, the first day of the data set. */
export const DAY1 = Date.UTC(2026, 10, 1);
export const DAY = 86_400_000;
/** The reports' "now": the day after the data set. */
export const NOW = DAY1 + 2 * DAY + 12 * 3_600_000;

interface Code {
  day: number;
  at: number;
  phone: string;
  country: string;
  purpose: string;
  channel: string;
  status: string;
  delivery: string | null;
  error?: string;
  price: number | null;
  /** Seconds from send to verification. */
  verifiedAfter?: number;
  expiresIn?: number;
}

/** Seven codes and three refusals over two days, each chosen so that every figure of a report is known. */
export const CODES: Code[] = [
  // Day 1, Costa Rica, SMS, registration: two verified (10 s, 30 s), one expired, one locked; three delivered.
  {
    day: 0,
    at: 3600,
    phone: "+50688880001",
    country: "CR",
    purpose: "registration",
    channel: "sms",
    status: "verified",
    delivery: "delivered",
    price: 57_000,
    verifiedAfter: 10,
  },
  {
    day: 0,
    at: 7200,
    phone: "+50688880002",
    country: "CR",
    purpose: "registration",
    channel: "sms",
    status: "verified",
    delivery: "delivered",
    price: 57_000,
    verifiedAfter: 30,
  },
  {
    day: 0,
    at: 9000,
    phone: "+50688880003",
    country: "CR",
    purpose: "registration",
    channel: "sms",
    status: "sent",
    delivery: "delivered",
    price: 57_000,
  },
  {
    day: 0,
    at: 9500,
    phone: "+50688880004",
    country: "CR",
    purpose: "registration",
    channel: "sms",
    status: "locked",
    delivery: "sent",
    price: 57_000,
  },
  // Day 2, United States, SMS, login: one refused at once (21610), one undelivered (30003) and expired.
  {
    day: 1,
    at: 100,
    phone: "+14155550101",
    country: "US",
    purpose: "login",
    channel: "sms",
    status: "failed",
    delivery: null,
    error: "21610",
    price: null,
  },
  {
    day: 1,
    at: 200,
    phone: "+14155550102",
    country: "US",
    purpose: "login",
    channel: "sms",
    status: "sent",
    delivery: "undelivered",
    error: "30003",
    price: 8_000,
  },
  // Day 2, Costa Rica, WhatsApp, login: read and verified after 90 s.
  {
    day: 1,
    at: 300,
    phone: "+50688880005",
    country: "CR",
    purpose: "login",
    channel: "whatsapp",
    status: "verified",
    delivery: "read",
    price: 5_000,
    verifiedAfter: 90,
  },
];

export const REFUSALS = [
  { day: 0, rule: "number", purpose: "registration", country: "CR" },
  { day: 0, rule: "number", purpose: "registration", country: "CR" },
  { day: 1, rule: "country", purpose: "login", country: "US" },
];

export async function insertDataSet(db: Kysely<Database>, suffix = ""): Promise<void> {
  await db
    .insertInto("otp_codes")
    .values(
      CODES.map((c, i) => {
        const created = DAY1 + c.day * DAY + c.at * 1000;
        return {
          id: `otp_${suffix}${String(i).padStart(32 - suffix.length, "0")}`,
          user_id: `usr_${i}`,
          phone_number: c.phone,
          purpose: c.purpose,
          code_hash: "x".repeat(64),
          channel: c.channel,
          status: c.status,
          created_at: created,
          expires_at: created + 600_000,
          verified_at: c.verifiedAfter === undefined ? null : created + c.verifiedAfter * 1000 + 400,
          provider_message_id: c.status === "failed" ? null : `SM${i}`,
          provider_error_code: c.error ?? null,
          delivery_status: c.delivery,
          updated_at: created,
          country: c.country,
          price_micros: c.price,
          price_final: 1,
          fallback_from: null,
        };
      }),
    )
    .execute();
  await db
    .insertInto("otp_refusals")
    .values(
      REFUSALS.map((r, i) => ({
        id: `ref_${suffix}${i}`,
        created_at: DAY1 + r.day * DAY + 5000 * 1000 + i,
        rule: r.rule,
        code: r.rule === "country" ? "destination_not_allowed" : "rate_limited",
        purpose: r.purpose,
        user_id: `usr_r${i}`,
        country: r.country,
        phone_prefix: null,
        ip: "203.0.113.7",
      })),
    )
    .execute();
}
