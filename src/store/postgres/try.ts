import { type Kysely, sql } from "kysely";
import type { ChallengeKey } from "../../records.js";
import { perKeep } from "../otp-statements.js";
import { prepare, type Runner, statement } from "../prepared.js";
import type { Database } from "../schema.js";
import type { SharedStatements } from "../shared-statements.js";
import { challengeFrom, keyIdOf } from "../steps.js";
import type { Bucket, Consumed, LiveCode, VerifyRule, VerifyTry } from "../store.js";
import { allTaken, DIVISION_BY_ZERO, type FoldedTakeValues, foldedTakeCtes, foldedValues } from "./take-batch.js";
import { firstOfEach, type Pending, TurnBatch } from "./turn-batch.js";

interface TryValues {
  phone: string;
  purpose: string;
  user: string;
  maxAttempts: number;
  now: number;
}

interface CountAllValues {
  phones: string[];
  purposes: string[];
  users: string[];
  nows: number[];
  maxAttempts: number;
}

interface ConsumeAllValues {
  ids: string[];
  nows: number[];
}

/** countAndReadAll's CTEs (input, counted): each challenge's try counted while it has tries and time left. */
function countAllCtes(p: CountAllValues) {
  return sql`input (phone, purpose, user_id, now) as (
      select * from unnest(${p.phones}::text[], ${p.purposes}::text[], ${p.users}::text[], ${p.nows}::bigint[])
    ),
    counted as (
      update otp_challenges set attempts = otp_challenges.attempts + 1
      from input
      where otp_challenges.phone_number = input.phone and otp_challenges.purpose = input.purpose
        and otp_challenges.user_id = input.user_id
        and otp_challenges.attempts < ${p.maxAttempts}::bigint and otp_challenges.expires_at > input.now
        and otp_challenges.verified_at is null and otp_challenges.locked_until is null
      returning otp_challenges.phone_number, otp_challenges.purpose, otp_challenges.user_id, otp_challenges.attempts
    )`;
}

const COUNTED_AND_LIVE = sql`counted.phone_number, counted.purpose, counted.user_id, counted.attempts,
  live.id, live.code_hash, live.key_id, live.expires_at, live.channel`;

/** The newest `keep` live codes of each counted challenge, joined to it. */
function liveCodes(keep: number) {
  return sql`left join lateral (
      select id, code_hash, key_id, expires_at, channel from otp_codes
      where phone_number = counted.phone_number and purpose = counted.purpose and user_id = counted.user_id
        and status in ('pending', 'sent')
      order by created_at desc, id desc limit ${sql.lit(keep)}
    ) as live on true`;
}

/** A try's two statements on PostgreSQL (see `TryBatch`), alone and for many challenges at once. */
export function tryStatements(db: Kysely<Database>) {
  return {
    /** countAndRead for many challenges (each once): one row per live code of a counted challenge. */
    countAndReadAll: perKeep((keep) =>
      prepare<CountAllValues>((p) => ({
        compile: () => sql`with ${countAllCtes(p)} select ${COUNTED_AND_LIVE} from counted ${liveCodes(keep)}`.compile(db),
      })),
    ),
    /**
     * The turn's takes (take-batch.ts) and countAndReadAll in one statement, undone whole (division by
     * zero) when a bucket has no room for the turn; one row of nulls when nothing was counted.
     */
    takeCountAndReadAll: perKeep((keep) =>
      prepare<FoldedTakeValues & CountAllValues>((p) => ({
        compile: () =>
          sql`with ${foldedTakeCtes(p)}, ${countAllCtes(p)}, verdict as (select ${allTaken(p)} as taken)
            select verdict.taken, ${COUNTED_AND_LIVE} from verdict left join (counted ${liveCodes(keep)}) on true`.compile(db),
      })),
    ),
    /** consumeAndClose for many codes (each of a different challenge): answers the ids consumed. */
    consumeAndCloseAll: prepare<ConsumeAllValues>((p) => ({
      compile: () =>
        sql`with input (id, now) as (select * from unnest(${p.ids}::text[], ${p.nows}::bigint[])),
          consumed as (
            update otp_codes set status = 'verified', verified_at = input.now, code_hash = null, updated_at = input.now
            from input
            where otp_codes.id = input.id and otp_codes.status in ('pending', 'sent') and otp_codes.expires_at > input.now
            returning otp_codes.id, otp_codes.phone_number, otp_codes.purpose, otp_codes.user_id, input.now
          ),
          closed as (
            update otp_challenges set verified_at = consumed.now
            from consumed
            where otp_challenges.phone_number = consumed.phone_number and otp_challenges.purpose = consumed.purpose
              and otp_challenges.user_id = consumed.user_id
          ),
          retired as (
            update otp_codes set status = 'superseded', code_hash = null, updated_at = consumed.now
            from consumed
            where otp_codes.phone_number = consumed.phone_number and otp_codes.purpose = consumed.purpose
              and otp_codes.user_id = consumed.user_id and otp_codes.status in ('pending', 'sent') and otp_codes.id <> consumed.id
          )
          select id from consumed`.compile(db),
    })),
    /**
     * Counts the try, guarded by the budget, and reads the challenge's newest live codes in the same
     * statement. No row: the try was not counted (no live challenge, or its budget is spent). A row with a
     * null id: counted, but no live code.
     */
    countAndRead: perKeep((keep) =>
      prepare<TryValues>((p) => ({
        compile: () =>
          sql`with counted as (
              update otp_challenges set attempts = attempts + 1
              where phone_number = ${p.phone}::text and purpose = ${p.purpose}::text and user_id = ${p.user}::text
                and attempts < ${p.maxAttempts}::bigint and expires_at > ${p.now}::bigint
                and verified_at is null and locked_until is null
              returning attempts
            )
            select counted.attempts, live.id, live.code_hash, live.key_id, live.expires_at, live.channel
            from counted left join lateral (
              select id, code_hash, key_id, expires_at, channel from otp_codes
              where phone_number = ${p.phone}::text and purpose = ${p.purpose}::text and user_id = ${p.user}::text
                and status in ('pending', 'sent')
              order by created_at desc, id desc limit ${sql.lit(keep)}
            ) as live on true`.compile(db),
      })),
    ),
    /**
     * Consumes the picked code, guarded by its status and expiry (one winner however many race), and in
     * the same statement closes the challenge and retires its other live codes, only if it was consumed.
     */
    consumeAndClose: prepare<{ phone: string; purpose: string; user: string; id: string; now: number }>((p) => ({
      compile: () =>
        sql`with consumed as (
            update otp_codes set status = 'verified', verified_at = ${p.now}::bigint, code_hash = null, updated_at = ${p.now}::bigint
            where id = ${p.id}::text and status in ('pending', 'sent') and expires_at > ${p.now}::bigint
            returning id
          ),
          closed as (
            update otp_challenges set verified_at = ${p.now}::bigint
            where phone_number = ${p.phone}::text and purpose = ${p.purpose}::text and user_id = ${p.user}::text
              and exists (select 1 from consumed)
          ),
          retired as (
            update otp_codes set status = 'superseded', code_hash = null, updated_at = ${p.now}::bigint
            where phone_number = ${p.phone}::text and purpose = ${p.purpose}::text and user_id = ${p.user}::text
              and status in ('pending', 'sent') and id <> ${p.id}::text and exists (select 1 from consumed)
          )
          select count(*) as consumed from consumed`.compile(db),
    })),
  };
}

/** PostgreSQL's SQLSTATE for a deadlock: a batch that meets another process's rows in another order. */
export const DEADLOCK = "40P01";

interface CountInput {
  challenge: Challenge;
  maxAttempts: number;
  keep: number;
  now: number;
  /** The try's units (RATE_LIMIT_VERIFY), taken with its count, all or nothing. */
  take: readonly Bucket[];
}

type Limited = Extract<VerifyTry, { kind: "limited" }>;

interface ConsumeInput {
  challenge: Challenge;
  id: string;
  now: number;
}

interface Challenge {
  phone: string;
  purpose: string;
  user: string;
}

const keyOf = (c: { phone: string; purpose: string; user: string }): string => `${c.phone}\u0000${c.purpose}\u0000${c.user}`;

/**
 * Tries in two statements each, in autocommit, instead of a transaction of five or six round trips that
 * held the challenge's row while the service compared: the count and the read of the live codes, then
 * the consumption of the picked code with the challenge's close. What makes a try safe holds statement by
 * statement: the count is one guarded UPDATE (parallel guesses never outrun the budget), and a code is
 * consumed by one UPDATE guarded by its status and expiry (of many right tries exactly one verifies; a
 * loser finds the challenge verified and is refused, as it was when it waited for the row). Each of the two
 * statements is shared by the tries of one turn of the event loop (one per challenge: a second try of the
 * same challenge in the turn runs alone after it, and sees the first's count), and the first also takes
 * the turn's units (RATE_LIMIT_VERIFY, folded as take-batch.ts does), so a busy service makes two round
 * trips and two commits per turn, not per try. A registration (the number marked verified on
 * the user too) keeps the one-transaction step.
 */
export class TryBatch {
  readonly #runner: Runner;
  readonly #own: ReturnType<typeof tryStatements>;
  readonly #shared: SharedStatements;
  readonly #take: (buckets: readonly Bucket[], now: number) => Promise<Consumed>;
  readonly #counts: TurnBatch<CountInput, Record<string, unknown>[] | Limited>;
  readonly #consumes: TurnBatch<ConsumeInput, boolean>;

  constructor(
    runner: Runner,
    statements: { own: ReturnType<typeof tryStatements>; shared: SharedStatements },
    take: (buckets: readonly Bucket[], now: number) => Promise<Consumed>,
  ) {
    this.#runner = runner;
    this.#own = statements.own;
    this.#shared = statements.shared;
    this.#take = take;
    this.#counts = new TurnBatch((batch) => this.#countAll(batch));
    this.#consumes = new TurnBatch((batch) => this.#consumeAll(batch));
  }

  async try(
    parts: { key: ChallengeKey; rule: VerifyRule; match: (codes: LiveCode[]) => LiveCode | undefined },
    now: number,
    take: readonly Bucket[],
  ): Promise<VerifyTry> {
    const { key, rule, match } = parts;
    const challenge = { phone: key.phoneNumber, purpose: key.purpose, user: key.userId };
    const counted = await this.#counts.add({ challenge, maxAttempts: rule.maxAttempts, keep: rule.keepLive, now, take });
    if (!Array.isArray(counted)) return counted;
    const [first] = counted;
    if (first === undefined) return refused(this.#runner, this.#shared, challenge);
    const live: LiveCode[] = counted
      .filter((row) => row.id !== null)
      .map((row) => ({
        id: String(row.id),
        codeHash: row.code_hash === null ? "" : String(row.code_hash),
        keyId: keyIdOf(row.key_id),
        expiresAt: Number(row.expires_at),
        channel: String(row.channel),
      }));
    const picked = match(live);
    if (picked === undefined) return { kind: "mismatch", attempts: Number(first.attempts), codes: live };
    if (!(await this.#consumes.add({ challenge, id: picked.id, now }))) return refused(this.#runner, this.#shared, challenge);
    return { kind: "verified", id: picked.id, channel: picked.channel };
  }

  async #countOne({ input }: Pending<CountInput, unknown>): Promise<Record<string, unknown>[]> {
    const values = { ...input.challenge, maxAttempts: input.maxAttempts, now: input.now };
    return (await this.#runner.one(statement(this.#own.countAndRead(input.keep), values))).rows;
  }

  /** A try on its own: its units (folded with the turn's other takes, take-batch.ts), then its count. */
  async #countAlone(pending: Pending<CountInput, unknown>): Promise<Record<string, unknown>[] | Limited> {
    const consumed = await this.#take(pending.input.take, pending.input.now);
    if (!consumed.ok) return { kind: "limited", rule: consumed.rule, retryAfterMs: consumed.retryAfterMs };
    return this.#countOne(pending);
  }

  /**
   * A turn's counts: every try's units and the first try of each challenge in one statement, then each
   * challenge's later tries one by one (their units already taken). When a bucket has no room for the
   * whole turn, or the statement meets another process's rows in another order, it has done nothing and
   * each try takes its units and counts on its own.
   */
  async #countAll(batch: Pending<CountInput, Record<string, unknown>[] | Limited>[]): Promise<void> {
    const [head] = batch;
    if (head === undefined) return;
    const same = (p: Pending<CountInput, unknown>) => p.input.maxAttempts === head.input.maxAttempts && p.input.keep === head.input.keep;
    const alone = batch.length === 1 && head.input.take.length === 0;
    const [together, after] = alone ? [[], batch] : firstOfEach(batch, (p) => keyOf(p.input.challenge), same);
    if (together.length === 0) {
      for (const p of after) await this.#countAlone(p).then(p.resolve, p.reject);
      return;
    }
    const take = foldedValues(batch.map((p) => ({ buckets: p.input.take, now: p.input.now })));
    const values = {
      ...take,
      phones: together.map((p) => p.input.challenge.phone),
      purposes: together.map((p) => p.input.challenge.purpose),
      users: together.map((p) => p.input.challenge.user),
      nows: together.map((p) => p.input.now),
      maxAttempts: head.input.maxAttempts,
    };
    const query = take.n === 0 ? this.#own.countAndReadAll(head.input.keep) : this.#own.takeCountAndReadAll(head.input.keep);
    let rows: Record<string, unknown>[];
    try {
      rows = (await this.#runner.one(statement(query, values))).rows;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== DEADLOCK && code !== DIVISION_BY_ZERO) throw error;
      for (const p of batch) await this.#countAlone(p).then(p.resolve, p.reject);
      return;
    }
    const byKey = new Map<string, Record<string, unknown>[]>();
    for (const row of rows) {
      if (row.phone_number === null || row.phone_number === undefined) continue;
      const k = keyOf({ phone: String(row.phone_number), purpose: String(row.purpose), user: String(row.user_id) });
      byKey.set(k, [...(byKey.get(k) ?? []), row]);
    }
    for (const p of together) p.resolve(byKey.get(keyOf(p.input.challenge)) ?? []);
    for (const p of after) await this.#countOne(p).then(p.resolve, p.reject);
  }

  async #consumeOne({ input }: Pending<ConsumeInput, unknown>): Promise<boolean> {
    const [done] = (await this.#runner.one(statement(this.#own.consumeAndClose, { ...input.challenge, id: input.id, now: input.now })))
      .rows;
    return Number(done?.consumed ?? 0) === 1;
  }

  async #consumeAll(batch: Pending<ConsumeInput, boolean>[]): Promise<void> {
    const [together, after] = batch.length === 1 ? [[], batch] : firstOfEach(batch, (p) => keyOf(p.input.challenge));
    if (together.length > 0) {
      const values = { ids: together.map((p) => p.input.id), nows: together.map((p) => p.input.now) };
      const consumed = await this.#runner.one(statement(this.#own.consumeAndCloseAll, values)).then(
        (result) => new Set(result.rows.map((row) => String(row.id))),
        (error: unknown) => {
          if ((error as { code?: unknown }).code !== DEADLOCK) throw error;
          after.unshift(...together.splice(0));
          return new Set<string>();
        },
      );
      for (const p of together) p.resolve(consumed.has(p.input.id));
    }
    for (const p of after) await this.#consumeOne(p).then(p.resolve, p.reject);
  }
}

/** A try that was not counted, or lost its code to another: the challenge's state says why. */
async function refused(
  runner: Runner,
  shared: SharedStatements,
  challenge: { phone: string; purpose: string; user: string },
): Promise<VerifyTry> {
  const [state] = (await runner.one(statement(shared.codes.challengeState, challenge))).rows;
  const [newest] = (await runner.one(statement(shared.codes.newestCode, challenge))).rows;
  return {
    kind: "refused",
    challenge: state === undefined ? null : challengeFrom(state),
    newest: newest === undefined ? null : { id: String(newest.id), channel: String(newest.channel) },
  };
}
