import { type Static, type TObject, type TSchema, Type } from "@sinclair/typebox";

/**
 * The reports' answers, declared once: the analytics routes validate and document them (OpenAPI),
 * analytics/report.ts builds them, and `vericode/client` reads their types with `import type` (so the
 * client bundles no TypeBox and no Node).
 */

export const GROUPINGS = ["day", "hour"] as const;
export type Grouping = (typeof GROUPINGS)[number];

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** What happened to the codes of a slice of time (or of a country, purpose, channel). */
const countFields = {
  /** Codes the provider accepted (every send but those that failed at once). */
  sent: Type.Integer({ description: "Codes the provider accepted." }),
  /** Of those, reported delivered (or read) by the provider's status callbacks. */
  delivered: Type.Integer({ description: "Reported delivered (or read) by the provider." }),
  /** Refused by the provider at once, or reported undelivered / failed later. */
  failed: Type.Integer({ description: "Refused by the provider at once, or reported undelivered/failed later." }),
  verified: Type.Integer(),
  /** Never verified, and their lifetime is over. */
  expired: Type.Integer({ description: "Never verified; lifetime over." }),
  /** Killed by too many wrong tries. */
  locked: Type.Integer({ description: "Codes ended by too many wrong tries." }),
  /** verified / sent, 0 when nothing was sent. */
  conversion_rate: Type.Number({ description: "verified / sent." }),
  /** What the provider charged (its price when it said, else the estimate), in US dollars. */
  spend_usd: Type.Number({ description: "The provider's price where it said, else the estimate." }),
};

export type Counts = Static<TObject<typeof countFields>>;

export const Filters = Type.Object({
  purpose: Nullable(Type.String()),
  channel: Nullable(Type.String()),
  country: Nullable(Type.String()),
});

/** A report's headline figures over a time range. */
export const Summary = Type.Object({
  from: Type.String({ format: "date-time" }),
  to: Type.String({ format: "date-time" }),
  filters: Filters,
  totals: Type.Object({ ...countFields, refused: Type.Integer({ description: "Sends refused by a protection rule." }) }),
  /** From send to verification, over the verified codes; null when none. */
  time_to_verify: Type.Object({
    median_seconds: Nullable(Type.Integer()),
    p95_seconds: Nullable(Type.Integer()),
    verified: Type.Integer(),
  }),
  by_country: Type.Array(Type.Object({ country: Nullable(Type.String()), ...countFields })),
  by_purpose: Type.Array(Type.Object({ purpose: Type.String(), ...countFields })),
  by_channel: Type.Array(Type.Object({ channel: Type.String(), ...countFields })),
  /** Provider error codes of the failed sends, most frequent first. */
  failures_by_error_code: Type.Array(Type.Object({ error_code: Nullable(Type.String()), count: Type.Integer() })),
  /** Sends refused by a protection rule (rate limit, country, budget…), most frequent first. */
  refusals_by_rule: Type.Array(Type.Object({ rule: Type.String(), count: Type.Integer() })),
});
export type Summary = Static<typeof Summary>;

/** `GET /api/v1/analytics/summary/`: the summary and the SMS budget's current period. */
export const SummaryAnswer = Type.Object({
  ...Summary.properties,
  budget: Nullable(
    Type.Object(
      { period: Type.String(), budget_usd: Type.Number(), spent_usd: Type.Number(), reserved_usd: Type.Number() },
      { description: "The SMS budget's current period (SMS_BUDGET_USD); null when none is set." },
    ),
  ),
});
export type SummaryAnswer = Static<typeof SummaryAnswer>;

/** The same figures per day or hour (UTC), every bucket of the range included. */
export const Timeseries = Type.Object({
  from: Type.String({ format: "date-time" }),
  to: Type.String({ format: "date-time" }),
  // Documented as a plain string, as it always was; typed as the two groupings it can be.
  group_by: Type.Unsafe<Grouping>(Type.String()),
  filters: Filters,
  points: Type.Array(Type.Object({ t: Type.String({ format: "date-time" }), ...countFields, refused: Type.Integer() })),
});
export type Timeseries = Static<typeof Timeseries>;
