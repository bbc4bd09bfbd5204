import { type Kysely, type Selectable, sql } from "kysely";
import { type Prepared, prepare, type Runner } from "../prepared.js";
import type { Database, VerificationsTable } from "../schema.js";
import type { Bucket, Consumed } from "../store.js";
import type { OpenWithAttempt } from "../verify-statements.js";
import type { CheckedOnce, CheckTarget, CheckValues, Opened, Units, VerifyHotPath } from "../verify-store.js";
import { allTaken, DIVISION_BY_ZERO, type FoldedTakeValues, foldedTakeCtes, foldedValues } from "./take-batch.js";
import { DEADLOCK } from "./try.js";
import { firstOfEach, type Pending, TurnBatch } from "./turn-batch.js";

type Row = Selectable<VerificationsTable>;

/** What the adapter lends the batches besides Units: a take that is not folded again, and its sweep. */
export interface BatchUnits extends Units {
  /** The buckets in one statement of their own (a request of a batch that could not run whole). */
  takeAlone(buckets: readonly Bucket[], now: number): Promise<Consumed>;
  /** Deletes expired rate-limit windows when it is time (the adapter's, at most once a minute). */
  sweepIfDue(now: number): Promise<void>;
}

interface OpenAllValues {
  sids: string[];
  services: string[];
  tos: string[];
  channels: string[];
  nonces: string[];
  keyIds: string[];
  codeLengths: number[];
  locales: (string | null)[];
  nows: number[];
  expires: number[];
  maxSends: number[];
  attempts: string[];
  purposes: string[];
  attemptChannels: string[];
  countries: (string | null)[];
  prices: (number | null)[];
}

/** A turn's check units (take-batch.ts), and each check's read: by address (`tos`) or by sid (`sids`), the other null. */
interface ReadAllValues extends FoldedTakeValues {
  services: string[];
  tos: (string | null)[];
  sids: (string | null)[];
}

interface CheckAllValues {
  sids: string[];
  nows: number[];
  maxChecks: number[];
  approves: number[];
  purposes: string[];
}

/**
 * `open` of verify-statements.ts and the send attempt's row for many addresses (each once): a new
 * verification, or one more send on the pending one while it has sends and time left. `opened` holds the
 * opened verifications; an address without a row is out of sends or of time.
 */
function openAllCtes(p: OpenAllValues) {
  return sql`input (sid, service_sid, to_addr, channel, nonce, key_id, code_length, locale, now, expires_at, max_sends,
      attempt, purpose, attempt_channel, country, price_micros) as (
      select * from unnest(${p.sids}::text[], ${p.services}::text[], ${p.tos}::text[], ${p.channels}::text[],
        ${p.nonces}::text[], ${p.keyIds}::text[], ${p.codeLengths}::integer[], ${p.locales}::text[], ${p.nows}::bigint[],
        ${p.expires}::bigint[], ${p.maxSends}::integer[], ${p.attempts}::text[], ${p.purposes}::text[],
        ${p.attemptChannels}::text[], ${p.countries}::text[], ${p.prices}::bigint[])
    ),
    opened as (
      insert into verifications (sid, service_sid, to_addr, pending_to, channel, status, nonce, key_id, code_length, locale,
        send_count, check_count, created_at, updated_at, expires_at)
      select sid, service_sid, to_addr, to_addr, channel, 'pending', nonce, key_id, code_length, locale, 1, 0, now, now, expires_at
      from input order by service_sid, to_addr
      on conflict (service_sid, pending_to) do update set
        send_count = verifications.send_count + 1, channel = excluded.channel, updated_at = excluded.updated_at
      where verifications.send_count < (select max_sends from input
          where input.service_sid = verifications.service_sid and input.to_addr = verifications.pending_to)
        and verifications.expires_at > excluded.updated_at
      returning *
    ),
    attempt as (
      insert into otp_codes (id, user_id, phone_number, purpose, code_hash, key_id, channel, status, created_at, expires_at,
        updated_at, country, price_micros, price_final)
      select input.attempt, opened.sid, opened.to_addr, input.purpose, null, opened.key_id, input.attempt_channel, 'pending',
        input.now, opened.expires_at, input.now, input.country, input.price_micros, 0
      from opened join input on input.service_sid = opened.service_sid and input.to_addr = opened.to_addr
    )`;
}

/** A /v2 start's and check's statements for many requests at once: unnest's arrays in, one row per request out. */
function verifyBatchStatements(db: Kysely<Database>) {
  return {
    openAll: prepare<OpenAllValues>((p) => ({
      compile: () => sql`with ${openAllCtes(p)} select * from opened`.compile(db),
    })),
    /**
     * The turn's takes (take-batch.ts) and `openAll` in one statement, undone whole (division by zero) when
     * a bucket has no room for the turn; one row of nulls when nothing opened.
     */
    takeAndOpenAll: prepare<FoldedTakeValues & OpenAllValues>((p) => ({
      compile: () =>
        sql`with ${foldedTakeCtes(p)}, ${openAllCtes(p)}, verdict as (select ${allTaken(p)} as taken)
          select verdict.taken, opened.* from verdict left join opened on true`.compile(db),
    })),
    /** The pending verifications of many addresses. */
    pendingOfAll: prepare<{ services: string[]; tos: string[] }>((p) => ({
      compile: () =>
        sql`select verifications.* from unnest(${p.services}::text[], ${p.tos}::text[]) as input (service_sid, to_addr)
          join verifications on verifications.service_sid = input.service_sid and verifications.pending_to = input.to_addr`.compile(db),
    })),
    /**
     * A turn's check units (take-batch.ts) and its checks' reads in one statement, undone whole (division by
     * zero) when a bucket has no room for the turn. Each read is by address (`tos`) or by sid (`sids`, the
     * other null); `i` is its place in the arrays (from 1). One row of nulls but `taken` when nothing was found.
     */
    takeAndReadAll: prepare<ReadAllValues>((p) => ({
      compile: () =>
        sql`with ${foldedTakeCtes(p)}, verdict as (select ${allTaken(p)} as taken),
          input as (
            select * from unnest(${p.services}::text[], ${p.tos}::text[], ${p.sids}::text[]) with ordinality
              as input (service_sid, to_addr, sid, i)
          ),
          found as (
            select input.i, verifications.* from input
              join verifications on verifications.service_sid = input.service_sid and verifications.pending_to = input.to_addr
            union all
            select input.i, verifications.* from input
              join verifications on verifications.sid = input.sid and verifications.service_sid = input.service_sid
          )
          select verdict.taken, found.* from verdict left join found on true`.compile(db),
    })),
    /** Many verifications by sid, each in its service. */
    bySidAll: prepare<{ services: string[]; sids: string[] }>((p) => ({
      compile: () =>
        sql`select verifications.* from unnest(${p.services}::text[], ${p.sids}::text[]) as input (service_sid, sid)
          join verifications on verifications.sid = input.sid and verifications.service_sid = input.service_sid`.compile(db),
    })),
    /**
     * `checkOnce` of verify-statements.ts for many verifications (each once), and each approved one's newest
     * send attempt marked verified in the same statement. Answers the verifications counted.
     */
    checkAll: prepare<CheckAllValues>((p) => ({
      compile: () =>
        sql`with input (sid, now, max_checks, approve, purpose) as (
            select * from unnest(${p.sids}::text[], ${p.nows}::bigint[], ${p.maxChecks}::integer[], ${p.approves}::integer[],
              ${p.purposes}::text[])
          ),
          checked as (
            update verifications set check_count = verifications.check_count + 1, updated_at = input.now,
              status = case when input.approve = 1 then 'approved' else verifications.status end,
              pending_to = case when input.approve = 1 then null else verifications.pending_to end
            from input
            where verifications.sid = input.sid and verifications.status = 'pending' and verifications.pending_to is not null
              and verifications.expires_at > input.now and verifications.check_count < input.max_checks
            returning verifications.*
          ),
          newest as (
            select distinct on (otp_codes.user_id) otp_codes.id, checked.updated_at as now
            from checked
            join input on input.sid = checked.sid
            join otp_codes on otp_codes.phone_number = checked.to_addr and otp_codes.purpose = input.purpose
              and otp_codes.user_id = checked.sid
            where checked.status = 'approved'
            order by otp_codes.user_id, otp_codes.created_at desc, otp_codes.id desc
          ),
          marked as (
            update otp_codes set status = 'verified', verified_at = newest.now, updated_at = newest.now
            from newest where otp_codes.id = newest.id
          )
          select * from checked`.compile(db),
    })),
  };
}

interface OpenRequest {
  values: OpenWithAttempt;
  take: readonly Bucket[];
}

interface ReadRequest {
  service: string;
  target: CheckTarget;
  take: readonly Bucket[];
  now: number;
}

/** A check's read: the verification (null: none), or its units refused. */
type Read = { row: Row | null } | Extract<Consumed, { ok: false }>;

const addressOf = (service: string, to: string) => `${service}\u0000${to}`;

/**
 * A /v2 start's and check's common case on PostgreSQL, batched per turn of the event loop (turn-batch.ts):
 * the starts of one turn are one statement (their units taken as take-batch.ts folds them, and their
 * verifications opened with their attempts' rows), the reads one, the checks one, so a busy service pays
 * a round trip and a commit per turn instead of one per request. Each statement takes a key (an address,
 * a verification) at most once, as one statement cannot update a row twice and the second must see the
 * first: a key's second request goes in the next statement, after the first's.
 */
export class VerifyBatch implements VerifyHotPath {
  readonly #opens: TurnBatch<OpenRequest, Opened>;
  readonly #pending: TurnBatch<{ service: string; to: string }, Row | null>;
  readonly #bySid: TurnBatch<{ service: string; sid: string }, Row | null>;
  readonly #checks: TurnBatch<CheckValues, Row | null>;
  readonly #reads: TurnBatch<ReadRequest, Read>;
  readonly #q: ReturnType<typeof verifyBatchStatements>;
  readonly #runner: Runner;
  readonly #units: BatchUnits;

  constructor(db: Kysely<Database>, runner: Runner, units: BatchUnits) {
    const q = verifyBatchStatements(db);
    this.#q = q;
    this.#runner = runner;
    this.#units = units;
    const rows = (query: Prepared<never>, values: object) => this.#rows(query, values);
    this.#opens = new TurnBatch((batch) => this.#openBatch(batch));
    this.#pending = new TurnBatch((batch) =>
      byKey(
        batch,
        (input) => addressOf(input.service, input.to),
        (row) => addressOf(row.service_sid, row.pending_to ?? ""),
        (inputs) => rows(q.pendingOfAll as Prepared<never>, { services: inputs.map((i) => i.service), tos: inputs.map((i) => i.to) }),
      ),
    );
    this.#bySid = new TurnBatch((batch) =>
      byKey(
        batch,
        (input) => addressOf(input.service, input.sid),
        (row) => addressOf(row.service_sid, row.sid),
        (inputs) => rows(q.bySidAll as Prepared<never>, { services: inputs.map((i) => i.service), sids: inputs.map((i) => i.sid) }),
      ),
    );
    this.#reads = new TurnBatch((batch) => this.#readBatch(batch));
    this.#checks = new TurnBatch((batch) =>
      byKey(
        batch,
        (input) => input.sid,
        (row) => row.sid,
        (inputs) =>
          rows(q.checkAll as Prepared<never>, {
            sids: inputs.map((i) => i.sid),
            nows: inputs.map((i) => i.now),
            maxChecks: inputs.map((i) => i.maxChecks),
            approves: inputs.map((i) => i.approve),
            purposes: inputs.map((i) => i.purpose),
          }),
      ),
    );
  }

  async open(values: OpenWithAttempt, take: readonly Bucket[]): Promise<Opened> {
    // The takes folded here bypass the adapter's takeUnits, which sweeps: the sweep is asked for here.
    if (take.length > 0) await this.#units.sweepIfDue(values.now);
    return this.#opens.add({ values, take });
  }

  /** The turn's takes and reads in one statement, then the turn's counts in another (each key once). */
  async checkOnce(
    service: string,
    target: CheckTarget,
    now: number,
    decide: (row: Row) => CheckValues | null,
    take: readonly Bucket[],
  ): Promise<CheckedOnce> {
    if (take.length > 0) await this.#units.sweepIfDue(now);
    const read = take.length === 0 ? { row: await this.#read(service, target) } : await this.#reads.add({ service, target, take, now });
    if (!("row" in read)) return { kind: "limited", rule: read.rule, retryAfterMs: read.retryAfterMs };
    const values = read.row === null ? null : decide(read.row);
    return { kind: "checked", row: values === null ? null : await this.#checks.add(values) };
  }

  #read(service: string, target: CheckTarget): Promise<Row | null> {
    return "to" in target ? this.#pending.add({ service, to: target.to }) : this.#bySid.add({ service, sid: target.sid });
  }

  /**
   * A turn's checks: every unit and every read in one statement (reads change nothing, so an address read
   * twice is read twice). When a bucket has no room for the whole turn, or the statement meets another
   * process's rate-limit rows in another order, it has done nothing, and each check takes and reads alone.
   */
  async #readBatch(batch: Pending<ReadRequest, Read>[]): Promise<void> {
    const take = foldedValues(batch.map((p) => ({ buckets: p.input.take, now: p.input.now })));
    const values: ReadAllValues = {
      keys: take.keys,
      counts: take.counts,
      limits: take.limits,
      resets: take.resets,
      now: take.now,
      n: take.n,
      services: batch.map((p) => p.input.service),
      tos: batch.map((p) => ("to" in p.input.target ? p.input.target.to : null)),
      sids: batch.map((p) => ("sid" in p.input.target ? p.input.target.sid : null)),
    };
    let rows: (Row & { i: number | null })[];
    try {
      rows = (await this.#runner.one<Row & { i: number | null }>({ query: this.#q.takeAndReadAll as Prepared<never>, values })).rows;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== DEADLOCK && code !== DIVISION_BY_ZERO) throw error;
      await Promise.all(batch.map((p) => this.#readAlone(p.input).then(p.resolve, p.reject)));
      return;
    }
    const found = new Map<number, Row>();
    // `i` is a bigint: a number here (the adapter's parser for int8); null on the row of an empty turn.
    for (const row of rows) if (row.i !== null) found.set(row.i - 1, row);
    for (const [i, p] of batch.entries()) p.resolve({ row: found.get(i) ?? null });
  }

  async #readAlone({ service, target, take, now }: ReadRequest): Promise<Read> {
    const consumed = await this.#units.takeAlone(take, now);
    return consumed.ok ? { row: await this.#read(service, target) } : consumed;
  }

  async #rows(query: Prepared<never>, values: object): Promise<Row[]> {
    return (await this.#runner.one<Row>({ query, values })).rows;
  }

  /**
   * A turn's starts: every unit of the turn and the first start of each address in one statement, then
   * each address's later starts one by one (their units already taken). When a bucket has no room for the
   * whole turn, or the statement meets another process's rows in another order, it has done nothing, and
   * each start takes its units and opens on its own.
   */
  async #openBatch(batch: Pending<OpenRequest, Opened>[]): Promise<void> {
    const [together, after] = firstOfEach(batch, (p) => addressOf(p.input.values.service, p.input.values.to));
    together.sort((a, b) =>
      addressOf(a.input.values.service, a.input.values.to) < addressOf(b.input.values.service, b.input.values.to) ? -1 : 1,
    );
    let rows: Row[];
    try {
      const take = foldedValues(batch.map((p) => ({ buckets: p.input.take, now: p.input.values.now })));
      const query = take.n === 0 ? this.#q.openAll : this.#q.takeAndOpenAll;
      rows = await this.#rows(query as Prepared<never>, { ...take, ...openValues(together.map((p) => p.input.values)) });
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== DIVISION_BY_ZERO && code !== DEADLOCK) throw error;
      await Promise.all(batch.map((p) => this.#alone(p.input).then(p.resolve, p.reject)));
      return;
    }
    const opened = new Map(rows.filter((row) => row.sid !== null).map((row) => [addressOf(row.service_sid, row.to_addr), row]));
    for (const p of together) p.resolve({ kind: "taken", row: opened.get(addressOf(p.input.values.service, p.input.values.to)) ?? null });
    for (const p of after) {
      const row = this.#openOne(p.input.values).catch(async (error: unknown) => {
        await this.#units.giveBack(p.input.take, p.input.values.now).catch(() => {});
        throw error;
      });
      await row.then((found) => p.resolve({ kind: "taken", row: found }), p.reject);
    }
  }

  /** One start on its own: its units in a statement of their own, then its open. */
  async #alone({ values, take }: OpenRequest): Promise<Opened> {
    const consumed = await this.#units.takeAlone(take, values.now);
    if (!consumed.ok) return { kind: "limited", rule: consumed.rule, retryAfterMs: consumed.retryAfterMs };
    const row = await this.#openOne(values).catch(async (error: unknown) => {
      await this.#units.giveBack(take, values.now).catch(() => {});
      throw error;
    });
    return { kind: "taken", row };
  }

  async #openOne(values: OpenWithAttempt): Promise<Row | null> {
    const [row] = await this.#rows(this.#q.openAll as Prepared<never>, openValues([values]));
    return row ?? null;
  }
}

function openValues(inputs: readonly OpenWithAttempt[]): OpenAllValues {
  return {
    sids: inputs.map((i) => i.sid),
    services: inputs.map((i) => i.service),
    tos: inputs.map((i) => i.to),
    channels: inputs.map((i) => i.channel),
    nonces: inputs.map((i) => i.nonce),
    keyIds: inputs.map((i) => i.keyId),
    codeLengths: inputs.map((i) => i.codeLength),
    locales: inputs.map((i) => i.locale),
    nows: inputs.map((i) => i.now),
    expires: inputs.map((i) => i.expiresAt),
    maxSends: inputs.map((i) => i.maxSends),
    attempts: inputs.map((i) => i.attempt),
    purposes: inputs.map((i) => i.purpose),
    attemptChannels: inputs.map((i) => i.attemptChannel),
    countries: inputs.map((i) => i.country),
    prices: inputs.map((i) => i.priceMicros),
  };
}

/**
 * Runs a batch as statements that each take a key at most once (the first request of each key, then the
 * second of each, …), in key order, and answers each request with the row of its key, or null. Two
 * processes' statements may still meet the same rows in another order: the one PostgreSQL picks as a
 * deadlock's victim runs its requests one by one instead, as TryBatch does.
 */
async function byKey<I>(
  batch: Pending<I, Row | null>[],
  keyOf: (input: I) => string,
  rowKey: (row: Row) => string,
  run: (inputs: I[]) => Promise<Row[]>,
): Promise<void> {
  let rest = batch;
  while (rest.length > 0) {
    const [together, after] = firstOfEach(rest, (p) => keyOf(p.input));
    together.sort((a, b) => (keyOf(a.input) < keyOf(b.input) ? -1 : 1));
    const answer = async (pending: Pending<I, Row | null>[]) => {
      const found = new Map((await run(pending.map((p) => p.input))).map((row) => [rowKey(row), row]));
      for (const p of pending) p.resolve(found.get(keyOf(p.input)) ?? null);
    };
    try {
      await answer(together);
    } catch (error) {
      if ((error as { code?: unknown }).code !== DEADLOCK || together.length === 1) throw error;
      for (const p of together) await answer([p]);
    }
    rest = after;
  }
}
