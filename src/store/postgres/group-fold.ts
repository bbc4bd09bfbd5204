import { type Kysely, sql } from "kysely";
import type { DeliveryValues } from "../otp-statements.js";
import { prepare, type Statement, statement } from "../prepared.js";
import type { Database } from "../schema.js";
import type { SharedStatements } from "../shared-statements.js";

/** The arrays one folded batch binds: the delivery answers, then the counters (one entry per key). */
interface FoldValues {
  ids: string[];
  statuses: string[];
  nows: number[];
  messageIds: (string | null)[];
  errorCodes: (string | null)[];
  deliveryStatuses: (string | null)[];
  channels: (string | null)[];
  fallbacks: (string | null)[];
  keys: string[];
  counts: number[];
  resets: number[];
  now: number;
}

/**
 * A turn's delivery answers and counter increments as one statement, whatever their number: the answers
 * as one `UPDATE … FROM unnest(…)`, the increments summed per key into one upsert (`count + k`), taken
 * in key order like every other write of `rate_limits`, so batches of two processes never deadlock. One
 * round trip and one commit instead of a BEGIN, a statement per answer and per count, and a COMMIT.
 *
 * Its commit does not wait for the WAL to reach the disk (`synchronous_commit` off for this transaction
 * only, set from inside the statement; statements run after it in the same transaction commit the same
 * way): a crash of PostgreSQL may lose the last fraction of a second of these writes (delivery answers,
 * the breaker's counts and trips) but never a code, a try or an approval, and never leaves the database
 * inconsistent; a send no longer waits for a second disk flush after its code's (docs/architecture.md,
 * "Durability", says what a loss means).
 */
export function foldStatement(db: Kysely<Database>) {
  return prepare<FoldValues>((p) => ({
    compile: () =>
      sql`with answer (id, status, now, provider_message_id, provider_error_code, delivery_status, channel, fallback_from) as (
          select * from unnest(${p.ids}::text[], ${p.statuses}::text[], ${p.nows}::bigint[], ${p.messageIds}::text[],
            ${p.errorCodes}::text[], ${p.deliveryStatuses}::text[], ${p.channels}::text[], ${p.fallbacks}::text[])
        ),
        answered as (
          update otp_codes set status = answer.status, updated_at = answer.now,
            provider_message_id = coalesce(answer.provider_message_id, otp_codes.provider_message_id),
            provider_error_code = coalesce(answer.provider_error_code, otp_codes.provider_error_code),
            delivery_status = coalesce(answer.delivery_status, otp_codes.delivery_status),
            channel = coalesce(answer.channel, otp_codes.channel),
            fallback_from = coalesce(answer.fallback_from, otp_codes.fallback_from),
            -- A code that failed to go out can never verify: it keeps no MAC.
            code_hash = case when answer.status = 'failed' then null else otp_codes.code_hash end
          from answer
          where otp_codes.id = answer.id and otp_codes.status in ('pending', 'sent')
        ),
        counted as (
          insert into rate_limits (key, count, reset_at)
          select key, k, reset_at from unnest(${p.keys}::text[], ${p.counts}::bigint[], ${p.resets}::bigint[]) as c (key, k, reset_at)
          order by key
          on conflict (key) do update set
            count = case when rate_limits.reset_at <= ${p.now}::bigint then excluded.count else rate_limits.count + excluded.count end,
            reset_at = case when rate_limits.reset_at <= ${p.now}::bigint then excluded.reset_at else rate_limits.reset_at end
        )
        select set_config('synchronous_commit', 'off', true) as folded`.compile(db),
  }));
}

/**
 * Folds what `GroupCommit` collected: delivery answers (`codes.updateDelivery`) and counts
 * (`counters.add`) become one statement; anything else, and a second answer for the same code in one
 * batch (its order matters), stays as it was and runs after it in the same transaction.
 */
export function folder(shared: SharedStatements, fold: ReturnType<typeof foldStatement>): (pending: Statement[]) => Statement[] {
  return (pending) => {
    const values: FoldValues = {
      ids: [],
      statuses: [],
      nows: [],
      messageIds: [],
      errorCodes: [],
      deliveryStatuses: [],
      channels: [],
      fallbacks: [],
      keys: [],
      counts: [],
      resets: [],
      now: 0,
    };
    const counters = new Map<string, { count: number; resetAt: number }>();
    const rest: Statement[] = [];
    const answered = new Set<string>();
    for (const next of pending) {
      if (next.query === (shared.codes.updateDelivery as unknown) && !answered.has((next.values as DeliveryValues).id)) {
        const v = next.values as DeliveryValues;
        answered.add(v.id);
        values.ids.push(v.id);
        values.statuses.push(v.status);
        values.nows.push(v.now);
        values.messageIds.push(v.providerMessageId);
        values.errorCodes.push(v.providerErrorCode);
        values.deliveryStatuses.push(v.deliveryStatus);
        values.channels.push(v.channel);
        values.fallbacks.push(v.fallbackFrom);
      } else if (next.query === (shared.counters.add as unknown)) {
        const v = next.values as { key: string; now: number; resetAt: number };
        const counter = counters.get(v.key);
        if (counter === undefined) counters.set(v.key, { count: 1, resetAt: v.resetAt });
        else counter.count++;
        values.now = Math.max(values.now, v.now);
      } else rest.push(next);
    }
    if (values.ids.length === 0 && counters.size === 0) return rest;
    for (const [key, counter] of [...counters.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      values.keys.push(key);
      values.counts.push(counter.count);
      values.resets.push(counter.resetAt);
    }
    return [statement(fold, values), ...rest];
  };
}
