import type { Bucket, Consumed, Counter, CounterStore } from "../store/store.js";

export type { Bucket, Consumed, Counter } from "../store/store.js";

/**
 * Rate limits as counters in a store shared by every instance (the database or Redis), so that a limit
 * holds on one instance or twenty. Each bucket is a fixed window that starts at its first hit: at most
 * `limit` units until `resetAt`, then a fresh window. Every operation is atomic in its store; `consume`
 * is all or nothing across its buckets.
 */
export interface Limiter {
  readonly name: "sql" | "redis";
  /**
   * The store whose tables hold the counters, when this limiter counts in the service's own database
   * (the SQL limiter); null for Redis. A send or a try then hands its buckets to that store, which takes
   * them in the same atomic step as the send or the try.
   */
  readonly store: CounterStore | null;
  /** Takes one unit from every bucket, or none when any is full; says which rule refused and for how long. */
  consume(buckets: readonly Bucket[], now: number): Promise<Consumed>;
  /** Gives back the unit a consume took (the send it allowed was refused further on). */
  release(buckets: readonly Bucket[], now: number): Promise<void>;
  /** Counts without a limit (the conversion breaker's sends and verifications); a new window lasts `windowMs`. */
  add(keys: readonly string[], windowMs: number, now: number): Promise<void>;
  /** The live counters of `keys` (absent or ended ones read as zero). */
  read(keys: readonly string[], now: number): Promise<Counter[]>;
  /** Throws when the limiter's store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
