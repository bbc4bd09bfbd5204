import type { Step } from "../store/prepared.js";
import type { Store } from "../store/store.js";

/**
 * Rate limits as counters in a store shared by every instance (the database or Redis), so that a limit
 * holds on one instance or twenty. Each bucket is a fixed window that starts at its first hit: at most
 * `limit` units until `resetAt`, then a fresh window. Every operation is atomic in its store; `consume`
 * is all or nothing across its buckets.
 */
export interface Bucket {
  /** The counter's name: `number:+50688887777`, `ip:203.0.113.9`… */
  readonly key: string;
  readonly limit: number;
  readonly windowMs: number;
  /** The rule a refusal is reported under (`number`, `ip`…). */
  readonly rule: string;
}

export type Consumed = { ok: true } | { ok: false; rule: string; retryAfterMs: number };

export interface Counter {
  count: number;
  /** Epoch ms when the window ends; the counter reads 0 from then on. */
  resetAt: number;
}

export interface Limiter {
  readonly name: "sql" | "redis";
  /** Takes one unit from every bucket, or none when any is full; says which rule refused and for how long. */
  consume(buckets: readonly Bucket[], now: number): Promise<Consumed>;
  /** Gives back the unit a consume took (the send it allowed was refused further on). */
  release(buckets: readonly Bucket[], now: number): Promise<void>;
  /** Counts without a limit (the conversion breaker's sends and verifications); a new window lasts `windowMs`. */
  add(keys: readonly string[], windowMs: number, now: number): Promise<void>;
  /** The live counters of `keys` (absent or ended ones read as zero). */
  read(keys: readonly string[], now: number): Promise<Counter[]>;
  /**
   * The statements of `consume` to run inside a transaction of `store` (a send's or a try's), when this
   * limiter lives in that very database and can: they throw BucketFull when a bucket is full. Null: call
   * consume instead.
   */
  stepsFor?(buckets: readonly Bucket[], now: number, store: Store): (() => Step<void>) | null;
  /** The statements of `add`, to run inside a transaction of `store`, on the same terms as `stepsFor`. */
  addStepsFor?(keys: readonly string[], windowMs: number, now: number, store: Store): (() => Step<void>) | null;
  /** Throws when the limiter's store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Thrown inside a transaction to undo the units taken so far when a later bucket is full. */
export class BucketFull extends Error {
  constructor(
    readonly rule: string,
    readonly retryAfterMs: number,
  ) {
    super(`rate limit ${rule} reached`);
  }
}
