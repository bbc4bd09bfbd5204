import { type Kysely, sql } from "kysely";
import { prepare } from "./prepared.js";
import type { Database } from "./schema.js";

/** The statements of the spend budget and the refusal log, compiled once per store (see prepared.ts). */
export function protectionStatements(db: Kysely<Database>) {
  return {
    /**
     * Reserves `micros` in the period unless spent + reserved would pass the cap: no row then. One
     * conditional upsert, so parallel reservations on any number of instances never pass the cap together.
     */
    reserve: prepare<{ period: string; micros: number; cap: number; now: number }>((p) => ({
      compile: () =>
        sql`insert into sms_budget (period, spent_micros, reserved_micros, updated_at) values (${p.period}, 0, ${p.micros}, ${p.now})
          on conflict (period) do update set
            reserved_micros = sms_budget.reserved_micros + ${p.micros},
            updated_at = ${p.now}
          where sms_budget.spent_micros + sms_budget.reserved_micros + ${p.micros} <= ${p.cap}
          returning reserved_micros`.compile(db),
    })),
    /** Turns a reservation into spend (the provider's price, or the estimate), or gives it back (spent 0). */
    settle: prepare<{ period: string; reserved: number; spent: number; now: number }>((p) =>
      db
        .updateTable("sms_budget")
        .set((eb) => ({
          reserved_micros: eb("reserved_micros", "-", p.reserved),
          spent_micros: eb("spent_micros", "+", p.spent),
          updated_at: p.now,
        }))
        .where("period", "=", p.period),
    ),
    codePrice: prepare<{ id: string; micros: number; final: number; now: number }>((p) =>
      db.updateTable("otp_codes").set({ price_micros: p.micros, price_final: p.final, updated_at: p.now }).where("id", "=", p.id),
    ),
    budget: prepare<{ period: string }>((p) =>
      db.selectFrom("sms_budget").select(["spent_micros", "reserved_micros"]).where("period", "=", p.period),
    ),
    refusal: prepare<{
      id: string;
      now: number;
      rule: string;
      code: string;
      purpose: string;
      user: string;
      country: string | null;
      prefix: string | null;
      ip: string | null;
    }>((p) =>
      db.insertInto("otp_refusals").values({
        id: p.id,
        created_at: p.now,
        rule: p.rule,
        code: p.code,
        purpose: p.purpose,
        user_id: p.user,
        country: p.country,
        phone_prefix: p.prefix,
        ip: p.ip,
      }),
    ),
  };
}
