import { createRequire } from "node:module";
import { Kysely, PostgresDialect, sql } from "kysely";
import type pg from "pg";
import type { AdapterOptions, DialectAdapter, SendInput, TryParts } from "../adapter.js";
import { bucketValues, giveBackStep, inKeyOrder, perCount } from "../counter-statements.js";
import { type CodeValues, type OpenValues, openChallenge, perKeep } from "../otp-statements.js";
import { GroupCommit, type Prepared, prepare, type Step, statement } from "../prepared.js";
import type { Database } from "../schema.js";
import { countersOf, type SharedStatements, sharedStatements } from "../shared-statements.js";
import { challengeFrom } from "../steps.js";
import type { Bucket, BudgetHold, Consumed, Counter, SendOpened, TryTake, VerifyTry } from "../store.js";
import { folder, foldStatement } from "./group-fold.js";
import { OpenBatch, openAllStatement } from "./open-batch.js";
import { PostgresRunner } from "./runner.js";
import { type Begun, SendBatch, sendAllStatement } from "./send-batch.js";
import { DIVISION_BY_ZERO, foldedTakeStatement, TakeBatch } from "./take-batch.js";
import { TryBatch, tryStatements } from "./try.js";
import { VerifyBatch } from "./verify-batch.js";

const PG_INT8 = 20;
/**
 * `pg` is loaded when a PostgreSQL database is opened, not when the store's modules are: a service on
 * SQLite never holds the driver's modules (some 2 MiB of code and heap). It is CommonJS, so a synchronous require.
 */
const load = createRequire(import.meta.url);
/** Expired windows are swept at most this often: the table stays about the size of the live windows. */
const SWEEP_EVERY_MS = 60_000;

/**
 * PostgreSQL through `pg`: each statement is a round trip, so a send is single statements in autocommit,
 * each shared by the sends of one turn: the buckets and the challenge and code together (send-batch.ts),
 * or, with a budget hold between them, the buckets (take-batch.ts), the hold, then the challenge and code
 * (open-batch.ts); what a later statement refuses, this adapter gives back. Row locks last one statement,
 * not a transaction. A try is two statements (try.ts); delivery answers and counts of one turn are one.
 */
export class PostgresAdapter implements DialectAdapter {
  readonly name = "postgres";
  readonly db: Kysely<Database>;
  readonly runner: PostgresRunner;
  readonly groupCommit: GroupCommit;
  readonly statements: SharedStatements;
  readonly verifyV2: VerifyBatch;
  readonly #own: ReturnType<typeof postgresStatements>;
  readonly #tries: TryBatch;
  readonly #takes: TakeBatch;
  readonly #opens: OpenBatch;
  readonly #sends: SendBatch;
  #sweptAt = 0;

  constructor(url: string, options: AdapterOptions = {}) {
    const driver = load("pg") as typeof pg;
    const pool = new driver.Pool({
      connectionString: url,
      max: options.poolSize ?? 20,
      connectionTimeoutMillis: 5000,
      ...(options.schema === undefined ? {} : { options: `-c search_path=${options.schema}` }),
      // BIGINT columns hold epoch milliseconds and counts: safe as JavaScript numbers.
      types: {
        getTypeParser: ((oid: number, format?: "text" | "binary") =>
          oid === PG_INT8 ? (value: string) => Number(value) : driver.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client's error (server restart) must not crash the process; the next query reports it.
    pool.on("error", () => {});
    this.db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    this.runner = new PostgresRunner(pool);
    this.statements = sharedStatements(this.db);
    this.groupCommit = new GroupCommit(this.runner, folder(this.statements, foldStatement(this.db)));
    this.#own = postgresStatements(this.db);
    // A batch that could not run whole (a bucket without room for the turn, a deadlock) runs each request
    // alone: its take alone too, not folded again with the others' (which would fail the same way).
    const takeAlone = (buckets: readonly Bucket[], now: number): Promise<Consumed> =>
      buckets.length === 0 ? Promise.resolve({ ok: true }) : this.#takeAlone(inKeyOrder(buckets), now);
    this.verifyV2 = new VerifyBatch(this.db, this.runner, {
      take: (buckets: readonly Bucket[], now: number) => this.takeUnits(buckets, now),
      takeAlone,
      giveBack: (buckets: readonly Bucket[], now: number) => this.#giveBack(buckets, null, now),
      withUnits: (buckets, now, step) => this.withUnits(buckets, now, step),
      sweepIfDue: (now: number) => this.#sweepIfDue(now),
    });
    this.#tries = new TryBatch(this.runner, { own: tryStatements(this.db), shared: this.statements }, takeAlone);
    const foldedTake = foldedTakeStatement(this.db);
    this.#takes = new TakeBatch(
      async (values) => {
        await this.runner.one(statement(foldedTake, values));
      },
      (buckets, now) => this.#takeAlone(buckets, now),
    );
    this.#opens = new OpenBatch(
      openAllStatement(this.db),
      async (query, values) => (await this.runner.one(statement(query, values))).rows,
      async ({ open, code, rule }) => {
        const [row] = (await this.runner.one(statement(this.#own.beginSend(rule.keepLive), { ...open, ...code }))).rows;
        return row === undefined ? null : { attempts: Number(row.attempts), sendCount: Number(row.send_count) };
      },
    );
    this.#sends = new SendBatch({
      all: sendAllStatement(this.db),
      run: async (query, values) => (await this.runner.one(statement(query, values))).rows,
      alone: (input, buckets) => this.#takeThenOpen(input, buckets),
      after: (input, buckets) => this.#open(input, buckets, null),
    });
  }

  async beginSend(input: SendInput): Promise<SendOpened> {
    const { open, take, now } = input;
    const buckets = inKeyOrder(take.buckets ?? []);
    const hold = take.budget ?? null;
    let begun: Begun;
    if (hold === null && buckets.length > 0) {
      // Without a budget hold, the turn's takes and opens are one statement (send-batch.ts).
      await this.#sweepIfDue(now);
      begun = await this.#sends.begin(input, buckets);
    } else {
      const consumed = await this.takeUnits(buckets, now);
      if (!consumed.ok) return { kind: "limited", rule: consumed.rule, retryAfterMs: consumed.retryAfterMs };
      if (hold !== null && !(await this.#reserve(hold, now))) {
        await this.#giveBack(buckets, null, now);
        return { kind: "over_budget" };
      }
      begun = await this.#open(input, buckets, hold);
    }
    if (begun.kind === "limited") return begun;
    if (begun.row !== null) return { kind: "opened", attempts: begun.row.attempts, sendCount: begun.row.sendCount };
    await this.#giveBack(buckets, hold, now);
    const [state] = (await this.runner.one(statement(this.statements.codes.challengeState, open))).rows;
    return { kind: "refused", challenge: state === undefined ? null : challengeFrom(state) };
  }

  /** A send's buckets (folded with the turn's other takes, take-batch.ts), then its open. */
  async #takeThenOpen(input: SendInput, buckets: readonly Bucket[]): Promise<Begun> {
    const consumed = buckets.length === 0 ? ({ ok: true } as const) : await this.#takeAlone(buckets, input.now);
    if (!consumed.ok) return { kind: "limited", rule: consumed.rule, retryAfterMs: consumed.retryAfterMs };
    return this.#open(input, buckets, null);
  }

  /** One statement for the turn's opens (open-batch.ts); a failure gives back what the send took. */
  async #open(input: SendInput, buckets: readonly Bucket[], hold: BudgetHold | null): Promise<Begun> {
    const row = await this.#opens.open(input).catch(async (error: unknown) => {
      // A failure leaves nothing taken either, when the database can still hear it.
      await this.#giveBack(buckets, hold, input.now).catch(() => {});
      throw error;
    });
    return { kind: "taken", row };
  }

  async tryVerify(step: () => Step<VerifyTry>, take: TryTake, now: number, parts?: TryParts): Promise<VerifyTry> {
    const buckets = inKeyOrder(take.buckets ?? []);
    let tried: VerifyTry;
    if (parts !== undefined && !parts.rule.markPhoneVerified) {
      // The try's units go with its count, in the turn's statement (try.ts).
      if (buckets.length > 0) await this.#sweepIfDue(now);
      tried = await this.#tries.try(parts, now, buckets);
    } else {
      const consumed = await this.takeUnits(buckets, now);
      if (!consumed.ok) return { kind: "limited", rule: consumed.rule, retryAfterMs: consumed.retryAfterMs };
      tried = await this.runner.transaction(step);
    }
    const counts = take.countOnVerified ?? null;
    if (tried.kind === "verified" && counts !== null) {
      // Counting decides nothing at once: it joins this turn's group commit.
      const { add } = this.statements.counters;
      await this.groupCommit.add(
        ...counts.keys.map((key) => statement(add, { key, now, resetAt: now + counts.windowMs }, `rate_limits:${key}`)),
      );
    }
    return tried;
  }

  async withUnits<T>(buckets: readonly Bucket[], now: number, step: () => Step<T>): Promise<T | Extract<Consumed, { ok: false }>> {
    const consumed = await this.takeUnits(buckets, now);
    return consumed.ok ? this.runner.transaction(step) : consumed;
  }

  /** Every bucket in one statement, folded with the takes of the same turn (take-batch.ts). */
  async takeUnits(buckets: readonly Bucket[], now: number): Promise<Consumed> {
    if (buckets.length === 0) return { ok: true };
    await this.#sweepIfDue(now);
    return this.#takes.take(inKeyOrder(buckets), now);
  }

  /** Expired windows are deleted at most once a minute, by the take that notices it is time. */
  async #sweepIfDue(now: number): Promise<void> {
    if (now - this.#sweptAt < SWEEP_EVERY_MS) return;
    this.#sweptAt = now;
    await this.runner.one(statement(this.statements.counters.sweep, { now }));
  }

  /**
   * One take's buckets in one statement, in autocommit, so the rows stay locked for the statement only.
   * The statement aborts itself when a bucket is full, which undoes the units it took; then one read says
   * which bucket and until when.
   */
  async #takeAlone(ordered: readonly Bucket[], now: number): Promise<Consumed> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.runner.one(statement(this.#own.takeAll(ordered.length), bucketValues(ordered, now)));
        return { ok: true };
      } catch (error) {
        if ((error as { code?: unknown }).code !== DIVISION_BY_ZERO) throw error;
      }
      const counters = await this.readCounters(
        ordered.map((bucket) => bucket.key),
        now,
      );
      const full = ordered.findIndex((bucket, i) => (counters[i]?.count ?? 0) >= bucket.limit);
      const bucket = ordered[full];
      // A unit freed between the two statements: try once more, then count it as full.
      if (bucket !== undefined) return { ok: false, rule: bucket.rule, retryAfterMs: Math.max(0, (counters[full]?.resetAt ?? now) - now) };
      if (attempt >= 1) return { ok: false, rule: ordered[0]?.rule ?? "global", retryAfterMs: 1000 };
    }
  }

  async readCounters(keys: readonly string[], now: number): Promise<Counter[]> {
    return countersOf(keys, (await this.runner.one(statement(this.#own.readMany, { keys: [...keys] }))).rows, now);
  }

  async migrating<T>(run: (schema: string | undefined) => Promise<T>): Promise<T> {
    // The bookkeeping tables must be looked for in our own schema: Kysely would otherwise take another
    // schema's kysely_migration table (same database, other search_path) for ours.
    const current = await sql<{ schema: string }>`select current_schema() as schema`.execute(this.db);
    return run(current.rows[0]?.schema);
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  /**
   * Autovacuum off: the hot statements are prepared once per connection and re-planned only when the
   * tables' statistics change, which autovacuum's ANALYZE does as they grow; without it a plan made on
   * empty tables stays (measured: a batch's plan scanning otp_codes, docs/deployment.md, "Sizing").
   */
  async warnings(): Promise<string[]> {
    const { rows } = await sql<{ autovacuum: string }>`select current_setting('autovacuum') as autovacuum`.execute(this.db);
    if (rows[0]?.autovacuum !== "off") return [];
    return [
      "PostgreSQL's autovacuum is off: vericode's prepared statements keep plans made on the tables' first statistics; turn it on, or run ANALYZE on vericode's schema regularly (docs/deployment.md)",
    ];
  }

  maintenancePauseMs(): number {
    return 0;
  }

  uniqueViolation(error: unknown): { column: string | null } | null {
    const { code, detail, constraint } = (error ?? {}) as { code?: unknown; detail?: unknown; constraint?: unknown };
    if (code !== "23505") return null;
    const text = `${typeof constraint === "string" ? constraint : ""} ${typeof detail === "string" ? detail : ""}`;
    const match = /\((\w+)\)=/.exec(text) ?? /_(\w+)_key/.exec(text);
    return { column: match?.[1] ?? null };
  }

  async close(): Promise<void> {
    await this.groupCommit.settled();
    await this.db.destroy();
  }

  async #reserve(hold: BudgetHold, now: number): Promise<boolean> {
    if (hold.micros > hold.capMicros) return false;
    const reserved = await this.runner.one(statement(this.statements.budget.reserve, { ...hold, cap: hold.capMicros, now }));
    return reserved.rows.length === 1;
  }

  /** Undoes a send's earlier statements when a later one refused: its units and its budget hold go back. */
  async #giveBack(buckets: readonly Bucket[], hold: BudgetHold | null, now: number): Promise<void> {
    if (buckets.length === 0 && hold === null) return;
    const { counters, budget } = this.statements;
    await this.runner.transaction(function* () {
      yield* giveBackStep(
        counters,
        buckets.map((bucket) => bucket.key),
        now,
      );
      if (hold !== null) yield statement(budget.settle, { period: hold.period, reserved: hold.micros, spent: 0, now });
    });
  }
}

function postgresStatements(db: Kysely<Database>) {
  return {
    /**
     * The whole of a send in one statement (one round trip instead of four): open the challenge, insert the
     * code only if it opened, and supersede the live codes beyond the newest `keep` (the statement sees the
     * codes as they were before it, so the newest keep - 1 of those stay).
     */
    beginSend: perKeep((keep) =>
      prepare<OpenValues & CodeValues>((p) => ({
        compile: () =>
          sql`with opened as (${openChallenge(p)}),
          inserted as (
            insert into otp_codes (id, user_id, phone_number, purpose, code_hash, channel, status, created_at, expires_at,
              verified_at, provider_message_id, provider_error_code, delivery_status, updated_at, country, price_micros, price_final, key_id)
            select ${p.id}::text, ${p.user}::text, ${p.phone}::text, ${p.purpose}::text, ${p.codeHash}::text, ${p.channel}::text,
              ${p.status}::text, ${p.createdAt}::bigint, ${p.expiresAt}::bigint, ${p.verifiedAt}::bigint, ${p.providerMessageId}::text,
              ${p.providerErrorCode}::text, ${p.deliveryStatus}::text, ${p.createdAt}::bigint, ${p.country}::text, ${p.priceMicros}::bigint, 0,
              ${p.keyId}::text
            from opened
            returning id
          ),
          superseded as (
            update otp_codes set status = 'superseded', code_hash = null, updated_at = ${p.now}::bigint
            where phone_number = ${p.phone}::text and purpose = ${p.purpose}::text and user_id = ${p.user}::text
              and status in ('pending', 'sent')
              and exists (select 1 from opened where opened.send_count > ${sql.lit(keep)})
              and id not in (
                select id from otp_codes
                where phone_number = ${p.phone}::text and purpose = ${p.purpose}::text and user_id = ${p.user}::text
                  and status in ('pending', 'sent')
                order by created_at desc, id desc limit ${sql.lit(keep - 1)}
              )
            returning id
          )
          select attempts, send_count from opened`.compile(db),
      })),
    ),
    /**
     * One unit from each of `n` buckets in one statement, or none: the statement fails with
     * division_by_zero when a bucket is full (rows are taken in key order, the same every time: no deadlock).
     */
    takeAll: perCount(
      (n): Prepared<Record<string, string | number>> =>
        prepare<Record<string, string | number>>((p) => ({
          compile: () =>
            sql`with input (key, lim, reset_at, ord) as (values ${sql.join(
              Array.from({ length: n }, (_, i) => sql`(${p[`k${i}`]}::text, ${p[`l${i}`]}::bigint, ${p[`r${i}`]}::bigint, ${sql.lit(i)})`),
            )}),
            taken as (
            insert into rate_limits (key, count, reset_at)
            select key, 1, reset_at from input order by ord
            on conflict (key) do update set
              count = case when rate_limits.reset_at <= ${p.now} then 1 else rate_limits.count + 1 end,
              reset_at = case when rate_limits.reset_at <= ${p.now} then excluded.reset_at else rate_limits.reset_at end
            where rate_limits.reset_at <= ${p.now} or rate_limits.count < (select lim from input where input.key = rate_limits.key)
            returning key
            )
            -- All or nothing: when a bucket was full, divide by zero, which aborts the statement and undoes it.
            select case when (select count(*) from taken) = ${sql.lit(n)} then 1
              else 1 / ((select count(*) from taken) - (select count(*) from taken)) end as taken`.compile(db),
        })),
    ),
    /** Many keys at once, bound as one array. */
    readMany: prepare<{ keys: string[] }>((p) => ({
      compile: () => sql`select key, count, reset_at from rate_limits where key = any(${p.keys}::text[])`.compile(db),
    })),
  };
}
