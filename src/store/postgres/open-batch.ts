import { type Kysely, sql } from "kysely";
import type { SendInput } from "../adapter.js";
import { perKeep } from "../otp-statements.js";
import { type Prepared, prepare } from "../prepared.js";
import type { Database } from "../schema.js";
import { firstOfEach, type Pending, TurnBatch } from "./turn-batch.js";

/** What an opened challenge answers: its tries so far and its sends in this challenge. */
export interface OpenedRow {
  attempts: number;
  sendCount: number;
}

export interface OpenAllValues {
  phones: string[];
  purposes: string[];
  users: string[];
  nows: number[];
  expires: number[];
  ids: string[];
  hashes: (string | null)[];
  keyIds: string[];
  channels: string[];
  statuses: string[];
  createdAts: number[];
  verifiedAts: (number | null)[];
  messageIds: (string | null)[];
  errorCodes: (string | null)[];
  deliveryStatuses: (string | null)[];
  countries: (string | null)[];
  prices: (number | null)[];
  baseMs: number;
  maxMs: number;
  sendsToMax: number;
}

/**
 * The sends of one turn in one statement: each challenge opened by the same conditional upsert as
 * `openChallenge` (its `now` and expiry are the row's own, `excluded.last_sent_at` and
 * `excluded.expires_at`), the code of each opened one inserted, and each opened challenge's live codes
 * beyond the newest `keep` superseded (the statement sees the codes as they were before it, so the newest
 * keep - 1 of those stay). Answers one row per opened challenge.
 */
export const openAllStatement = (db: Kysely<Database>) =>
  perKeep((keep) =>
    prepare<OpenAllValues>((p) => ({
      compile: () => sql`with ${openAllCtes(p, keep)} select phone_number, purpose, user_id, attempts, send_count from opened`.compile(db),
    })),
  );

/** `openAllStatement`'s CTEs (input, opened, inserted, superseded), which send-batch.ts puts after the turn's takes. */
export function openAllCtes(p: OpenAllValues, keep: number) {
  return sql`input (phone, purpose, user_id, now, expires_at, id, code_hash, key_id, channel, status, created_at, verified_at,
            provider_message_id, provider_error_code, delivery_status, country, price_micros) as (
            select * from unnest(${p.phones}::text[], ${p.purposes}::text[], ${p.users}::text[], ${p.nows}::bigint[],
              ${p.expires}::bigint[], ${p.ids}::text[], ${p.hashes}::text[], ${p.keyIds}::text[], ${p.channels}::text[],
              ${p.statuses}::text[], ${p.createdAts}::bigint[], ${p.verifiedAts}::bigint[], ${p.messageIds}::text[],
              ${p.errorCodes}::text[], ${p.deliveryStatuses}::text[], ${p.countries}::text[], ${p.prices}::bigint[])
          ),
          opened as (
            insert into otp_challenges
              (phone_number, purpose, user_id, attempts, send_count, last_sent_at, expires_at, locked_until, verified_at, created_at)
            select phone, purpose, user_id, 0, 1, now, expires_at, null, null, now from input order by phone, purpose, user_id
            on conflict (phone_number, purpose, user_id) do update set
              attempts = case
                when otp_challenges.expires_at <= excluded.last_sent_at or otp_challenges.verified_at is not null
                  or otp_challenges.locked_until is not null then 0
                else otp_challenges.attempts end,
              send_count = case
                when otp_challenges.expires_at <= excluded.last_sent_at or otp_challenges.verified_at is not null
                  or otp_challenges.locked_until is not null then 1
                else otp_challenges.send_count + 1 end,
              last_sent_at = excluded.last_sent_at,
              expires_at = case when otp_challenges.expires_at > excluded.expires_at
                and otp_challenges.verified_at is null and otp_challenges.locked_until is null
                then otp_challenges.expires_at else excluded.expires_at end,
              locked_until = null,
              verified_at = null
            where otp_challenges.last_sent_at + case
                when otp_challenges.expires_at <= excluded.last_sent_at or otp_challenges.verified_at is not null
                  or otp_challenges.locked_until is not null then ${p.baseMs}::bigint
                when otp_challenges.send_count >= ${p.sendsToMax}::bigint then ${p.maxMs}::bigint
                else ${p.baseMs}::bigint * (1 << (otp_challenges.send_count - 1)::int) end <= excluded.last_sent_at
              and (otp_challenges.locked_until is null or otp_challenges.locked_until <= excluded.last_sent_at)
            returning phone_number, purpose, user_id, attempts, send_count
          ),
          inserted as (
            insert into otp_codes (id, user_id, phone_number, purpose, code_hash, channel, status, created_at, expires_at,
              verified_at, provider_message_id, provider_error_code, delivery_status, updated_at, country, price_micros, price_final, key_id)
            select i.id, i.user_id, i.phone, i.purpose, i.code_hash, i.channel, i.status, i.created_at, i.expires_at, i.verified_at,
              i.provider_message_id, i.provider_error_code, i.delivery_status, i.created_at, i.country, i.price_micros, 0, i.key_id
            from input i join opened o on o.phone_number = i.phone and o.purpose = i.purpose and o.user_id = i.user_id
          ),
          superseded as (
            update otp_codes set status = 'superseded', code_hash = null, updated_at = old.now
            from (
              select c.id, i.now,
                row_number() over (partition by c.phone_number, c.purpose, c.user_id order by c.created_at desc, c.id desc) as rank
              from opened o
              join input i on i.phone = o.phone_number and i.purpose = o.purpose and i.user_id = o.user_id
              join otp_codes c on c.phone_number = o.phone_number and c.purpose = o.purpose and c.user_id = o.user_id
                and c.status in ('pending', 'sent')
              where o.send_count > ${sql.lit(keep)}
            ) as old
            where otp_codes.id = old.id and old.rank >= ${sql.lit(keep)}
          )`;
}

export const challengeOf = (input: SendInput): string => `${input.open.phone}\u0000${input.open.purpose}\u0000${input.open.user}`;

/**
 * The opens (challenge, code, superseding) asked for within one turn of the event loop, as one statement:
 * one round trip and one commit for the turn instead of one per send. Only sends that share the rule's
 * constants and are not exempt go together, and at most one per challenge (two of the same challenge in
 * one statement would touch its row twice, and the second must see the first's cooldown); the others
 * open alone (`single`), the second of a challenge after the turn's statement. One batch at a time.
 */
export class OpenBatch {
  readonly #all: (keep: number) => Prepared<OpenAllValues>;
  readonly #run: (query: Prepared<OpenAllValues>, values: OpenAllValues) => Promise<Record<string, unknown>[]>;
  readonly #single: (input: SendInput) => Promise<OpenedRow | null>;
  readonly #turns = new TurnBatch<SendInput, OpenedRow | null>((batch) => this.#runBatch(batch));

  constructor(
    all: (keep: number) => Prepared<OpenAllValues>,
    run: (query: Prepared<OpenAllValues>, values: OpenAllValues) => Promise<Record<string, unknown>[]>,
    single: (input: SendInput) => Promise<OpenedRow | null>,
  ) {
    this.#all = all;
    this.#run = run;
    this.#single = single;
  }

  open(input: SendInput): Promise<OpenedRow | null> {
    return this.#turns.add(input);
  }

  async #runBatch(batch: Pending<SendInput, OpenedRow | null>[]): Promise<void> {
    const [first] = batch;
    if (first === undefined) return;
    const fits = (p: Pending<SendInput, unknown>) => p.input.open.exempt === 0 && sameRule(p.input, first.input);
    const [together, after] = batch.length === 1 ? [[], batch] : firstOfEach(batch, (p) => challengeOf(p.input), fits);
    await this.#together(together);
    for (const p of after) await this.#single(p.input).then(p.resolve, p.reject);
  }

  async #together(together: Pending<SendInput, OpenedRow | null>[]): Promise<void> {
    const [first] = together;
    if (first === undefined) return;
    const rows = await this.#run(this.#all(first.input.rule.keepLive), valuesOf(together.map((p) => p.input)));
    const opened = new Map<string, OpenedRow>();
    for (const row of rows) {
      const key = `${String(row.phone_number)}\u0000${String(row.purpose)}\u0000${String(row.user_id)}`;
      opened.set(key, { attempts: Number(row.attempts), sendCount: Number(row.send_count) });
    }
    for (const p of together) p.resolve(opened.get(challengeOf(p.input)) ?? null);
  }
}

export function sameRule(a: SendInput, b: SendInput): boolean {
  return (
    a.open.baseMs === b.open.baseMs &&
    a.open.maxMs === b.open.maxMs &&
    a.open.sendsToMax === b.open.sendsToMax &&
    a.rule.keepLive === b.rule.keepLive
  );
}

export function valuesOf(inputs: readonly SendInput[]): OpenAllValues {
  const [first] = inputs as [SendInput];
  return {
    phones: inputs.map((i) => i.open.phone),
    purposes: inputs.map((i) => i.open.purpose),
    users: inputs.map((i) => i.open.user),
    nows: inputs.map((i) => i.open.now),
    expires: inputs.map((i) => i.open.expiresAt),
    ids: inputs.map((i) => i.code.id),
    hashes: inputs.map((i) => i.code.codeHash),
    keyIds: inputs.map((i) => i.code.keyId),
    channels: inputs.map((i) => i.code.channel),
    statuses: inputs.map((i) => i.code.status),
    createdAts: inputs.map((i) => i.code.createdAt),
    verifiedAts: inputs.map((i) => i.code.verifiedAt),
    messageIds: inputs.map((i) => i.code.providerMessageId),
    errorCodes: inputs.map((i) => i.code.providerErrorCode),
    deliveryStatuses: inputs.map((i) => i.code.deliveryStatus),
    countries: inputs.map((i) => i.code.country),
    prices: inputs.map((i) => i.code.priceMicros),
    baseMs: first.open.baseMs,
    maxMs: first.open.maxMs,
    sendsToMax: first.open.sendsToMax,
  };
}
