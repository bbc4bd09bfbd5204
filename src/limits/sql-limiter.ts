import type { Bucket, Consumed, Counter, CounterStore, StoreLifecycle } from "../store/store.js";
import type { Limiter } from "./limiter.js";

/**
 * The limiter in the service's own database (table `rate_limits`): the store does the counting (its
 * statements are each dialect's best: one multi-row upsert on SQLite, one all-or-nothing statement on
 * PostgreSQL); a send or a try hands its buckets to the store instead, to take them in its own step.
 */
export class SqlLimiter implements Limiter {
  readonly name = "sql";
  readonly store: CounterStore & Pick<StoreLifecycle, "ping">;

  constructor(store: CounterStore & Pick<StoreLifecycle, "ping">) {
    this.store = store;
  }

  consume(buckets: readonly Bucket[], now: number): Promise<Consumed> {
    return this.store.takeUnits(buckets, now);
  }

  release(buckets: readonly Bucket[], now: number): Promise<void> {
    return this.store.giveBackUnits(buckets, now);
  }

  add(keys: readonly string[], windowMs: number, now: number): Promise<void> {
    return this.store.addCounts(keys, windowMs, now);
  }

  read(keys: readonly string[], now: number): Promise<Counter[]> {
    return this.store.readCounters(keys, now);
  }

  ping(): Promise<void> {
    return this.store.ping();
  }

  async close(): Promise<void> {
    // The store is the service's own and closes with it.
  }
}
