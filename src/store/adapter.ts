import type { Kysely } from "kysely";
import type { ChallengeKey } from "../records.js";
import type { CodeValues, OpenValues } from "./otp-statements.js";
import { PostgresAdapter } from "./postgres/adapter.js";
import type { GroupCommit, Runner, Step } from "./prepared.js";
import type { Database } from "./schema.js";
import type { SharedStatements } from "./shared-statements.js";
import { SqliteAdapter } from "./sqlite/adapter.js";
import type {
  Bucket,
  Consumed,
  Counter,
  DatabaseLocation,
  LiveCode,
  SendOpened,
  SendRule,
  SendTake,
  TryTake,
  VerifyRule,
  VerifyTry,
} from "./store.js";
import type { VerifyHotPath } from "./verify-store.js";

/** A send as the adapter opens it: the challenge's values, the code's, the rule and what it takes. */
export interface SendInput {
  open: OpenValues;
  code: CodeValues;
  rule: SendRule;
  take: SendTake;
  now: number;
}

/** A try's parts, for an adapter that runs a try its own way rather than as the one-transaction step. */
export interface TryParts {
  key: ChallengeKey;
  rule: VerifyRule;
  match: (codes: LiveCode[]) => LiveCode | undefined;
}

/**
 * One database, as Kysely's DialectAdapter is one SQL dialect: the connection, the runner that drives
 * steps on it, and the few operations whose best form differs. SQLite runs in the process, so a send's
 * buckets, budget hold and code share one transaction at no cost; on PostgreSQL each statement is a round
 * trip, so the same work is a handful of single statements, each undone by the adapter when a later one
 * refuses. sqlite/ and postgres/ hold one each; nothing outside store/ knows which is in use.
 */
export interface DialectAdapter {
  readonly name: "sqlite" | "postgres";
  readonly db: Kysely<Database>;
  readonly runner: Runner;
  /** Writes nobody waits on to decide anything (delivery answers, counts), one transaction per turn. */
  readonly groupCommit: GroupCommit;
  readonly statements: SharedStatements;
  /** A /v2 start's and check's common case batched per turn (PostgreSQL), or null: one at a time (verify-store.ts). */
  readonly verifyV2: VerifyHotPath | null;
  /** See CodeStore.beginSend. */
  beginSend(input: SendInput): Promise<SendOpened>;
  /** Runs a try (`step`, or its `parts`) with what it takes and counts (see CodeStore.tryVerify). */
  tryVerify(step: () => Step<VerifyTry>, take: TryTake, now: number, parts?: TryParts): Promise<VerifyTry>;
  /**
   * `buckets`' units, then `step`, in one transaction on SQLite (in process, it costs nothing more); on
   * PostgreSQL the take (take-batch.ts), then the step. The step does not run when a bucket is full.
   */
  withUnits<T>(buckets: readonly Bucket[], now: number, step: () => Step<T>): Promise<T | Extract<Consumed, { ok: false }>>;
  /** See CounterStore.takeUnits. */
  takeUnits(buckets: readonly Bucket[], now: number): Promise<Consumed>;
  /** See CounterStore.readCounters: one statement for all the keys. */
  readCounters(keys: readonly string[], now: number): Promise<Counter[]>;
  /** Runs the migrations (`run` gets the schema the bookkeeping tables live in). */
  migrating<T>(run: (schema: string | undefined) => Promise<T>): Promise<T>;
  /** Throws when the database cannot be reached or cannot take a write now. */
  ping(): Promise<void>;
  /** See StoreLifecycle.warnings. */
  warnings(): Promise<string[]>;
  /**
   * How long maintenance (purge, MAC clearing) pauses after each batch: on SQLite a batch holds the one
   * write lock, so the service's writes get a turn between two; PostgreSQL locks rows and needs no pause.
   */
  maintenancePauseMs(): number;
  /** The column a unique-constraint violation names, or null when the error is not one. */
  uniqueViolation(error: unknown): { column: string | null } | null;
  close(): Promise<void>;
}

export interface AdapterOptions {
  /** PostgreSQL only: the schema to work in (tests give each run its own). */
  schema?: string;
  /** PostgreSQL only: connections in the pool. @default 20 */
  poolSize?: number;
  /** SQLite only: how long a write waits for another process's lock before it fails. @default 5000 */
  lockWaitMs?: number;
}

/** Opens the configured database: the one place that picks SQLite or PostgreSQL. */
export function openAdapter(database: DatabaseLocation, options: AdapterOptions = {}): DialectAdapter {
  return database.kind === "sqlite" ? new SqliteAdapter(database.path, options) : new PostgresAdapter(database.url, options);
}
