import { type Kysely, sql } from "kysely";
import type { SendInput } from "../adapter.js";
import { perKeep } from "../otp-statements.js";
import { type Prepared, prepare } from "../prepared.js";
import type { Database } from "../schema.js";
import type { Bucket } from "../store.js";
import { challengeOf, type OpenAllValues, type OpenedRow, openAllCtes, sameRule, valuesOf } from "./open-batch.js";
import { allTaken, DIVISION_BY_ZERO, type FoldedTakeValues, foldedTakeCtes, foldedValues } from "./take-batch.js";
import { DEADLOCK } from "./try.js";
import { firstOfEach, type Pending, TurnBatch } from "./turn-batch.js";

type SendAllValues = FoldedTakeValues & OpenAllValues;

/**
 * A turn's takes (take-batch.ts) and opens (open-batch.ts) as one statement: the takes' CTEs, the opens'
 * CTEs, and a verdict that divides by zero, undoing the whole statement, when a bucket had no room for
 * the turn (selected, so that it is evaluated). One row per opened challenge, or one row of nulls when
 * none opened.
 */
export const sendAllStatement = (db: Kysely<Database>) =>
  perKeep((keep) =>
    prepare<SendAllValues>((p) => ({
      compile: () =>
        sql`with ${foldedTakeCtes(p)}, ${openAllCtes(p, keep)},
          verdict as (select ${allTaken(p)} as taken)
          select verdict.taken, opened.phone_number, opened.purpose, opened.user_id, opened.attempts, opened.send_count
          from verdict left join opened on true`.compile(db),
    })),
  );

/** What a send's first statement did: its units taken and its challenge opened (row) or not (null), or a bucket full. */
export type Begun = { kind: "taken"; row: OpenedRow | null } | { kind: "limited"; rule: string; retryAfterMs: number };

interface SendRequest {
  input: SendInput;
  buckets: readonly Bucket[];
}

/**
 * The sends of one turn (those without a budget hold) as one statement: every bucket's units for the
 * whole turn and every challenge's open, so a busy service pays one round trip and one commit per turn
 * for both instead of one each, in one queue instead of two. The open part takes a challenge once, as
 * OpenBatch does: a second send of the same challenge in the turn (or one that does not fit the turn's
 * rule, or an exempt one) has its units taken with the turn's and opens after it (`after`). When a bucket
 * has no room for the whole turn, or the statement meets another process's rows in another order, the
 * statement has done nothing and each send runs in two steps (`alone`: its take, then its open), as
 * without this batch. Answers each send's units taken and its open, or the bucket that refused it.
 */
export class SendBatch {
  readonly #all: (keep: number) => Prepared<SendAllValues>;
  readonly #run: (query: Prepared<SendAllValues>, values: SendAllValues) => Promise<Record<string, unknown>[]>;
  readonly #alone: (input: SendInput, buckets: readonly Bucket[]) => Promise<Begun>;
  readonly #after: (input: SendInput, buckets: readonly Bucket[]) => Promise<Begun>;
  readonly #turns = new TurnBatch<SendRequest, Begun>((batch) => this.#runBatch(batch));

  constructor(options: {
    all: (keep: number) => Prepared<SendAllValues>;
    run: (query: Prepared<SendAllValues>, values: SendAllValues) => Promise<Record<string, unknown>[]>;
    /** A send's take, then its open: what each send of a turn does when the turn's statement cannot. */
    alone: (input: SendInput, buckets: readonly Bucket[]) => Promise<Begun>;
    /** A send whose units are taken: its open alone (gives its units back if the open fails). */
    after: (input: SendInput, buckets: readonly Bucket[]) => Promise<Begun>;
  }) {
    this.#all = options.all;
    this.#run = options.run;
    this.#alone = options.alone;
    this.#after = options.after;
  }

  begin(input: SendInput, buckets: readonly Bucket[]): Promise<Begun> {
    return this.#turns.add({ input, buckets });
  }

  async #runBatch(batch: Pending<SendRequest, Begun>[]): Promise<void> {
    const [first] = batch;
    if (first === undefined) return;
    if (batch.length === 1) {
      await this.#alone(first.input.input, first.input.buckets).then(first.resolve, first.reject);
      return;
    }
    const fits = (p: Pending<SendRequest, unknown>) => p.input.input.open.exempt === 0 && sameRule(p.input.input, first.input.input);
    const [together, after] = firstOfEach(batch, (p) => challengeOf(p.input.input), fits);
    const [head] = together;
    let rows: Record<string, unknown>[] = [];
    if (head !== undefined) {
      const take = foldedValues(batch.map((p) => ({ buckets: p.input.buckets, now: p.input.input.now })));
      const values = { ...take, ...valuesOf(together.map((p) => p.input.input)) };
      try {
        rows = await this.#run(this.#all(head.input.input.rule.keepLive), values);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code !== DIVISION_BY_ZERO && code !== DEADLOCK) throw error;
        // Nothing was taken or opened: each send on its own, its take all or nothing as ever.
        await Promise.all(batch.map((p) => this.#alone(p.input.input, p.input.buckets).then(p.resolve, p.reject)));
        return;
      }
    } else {
      // No send of the turn fits the statement's open: the turn's takes alone, then each open.
      await Promise.all(batch.map((p) => this.#alone(p.input.input, p.input.buckets).then(p.resolve, p.reject)));
      return;
    }
    const opened = new Map<string, OpenedRow>();
    for (const row of rows) {
      if (row.phone_number === null) continue;
      const key = `${String(row.phone_number)}\u0000${String(row.purpose)}\u0000${String(row.user_id)}`;
      opened.set(key, { attempts: Number(row.attempts), sendCount: Number(row.send_count) });
    }
    for (const p of together) p.resolve({ kind: "taken", row: opened.get(challengeOf(p.input.input)) ?? null });
    for (const p of after) await this.#after(p.input.input, p.input.buckets).then(p.resolve, p.reject);
  }
}
