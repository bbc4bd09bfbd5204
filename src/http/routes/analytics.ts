import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { type TSchema, Type } from "@sinclair/typebox";
import { reportQuery } from "../../analytics/range.js";
import { VericodeError } from "../../errors.js";
import { microsToUsd } from "../../limits/prices.js";
import type { Vericode } from "../../vericode.js";
import { bearerAuth, subject } from "../auth.js";
import { problems } from "../schemas.js";

const ReportParams = Type.Object(
  {
    since: Type.Optional(Type.String({ description: "How far back from `to`: 90m, 24h, 7d, 2w. Default 7d.", examples: ["7d"] })),
    from: Type.Optional(Type.String({ description: "Start (ISO 8601), instead of since.", examples: ["2026-11-01"] })),
    to: Type.Optional(Type.String({ description: "End, exclusive (ISO 8601). Default now." })),
    group_by: Type.Optional(Type.Union([Type.Literal("day"), Type.Literal("hour")], { description: "Buckets of the time series (UTC)." })),
    purpose: Type.Optional(Type.String({ description: "Only this purpose." })),
    channel: Type.Optional(Type.String({ description: "Only this channel (sms, whatsapp, voice, email); refusals have none." })),
    country: Type.Optional(Type.String({ description: "Only this country, ISO 3166 alpha-2 (CR)." })),
  },
  { additionalProperties: false },
);

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const countFields = {
  sent: Type.Integer({ description: "Codes the provider accepted." }),
  delivered: Type.Integer({ description: "Reported delivered (or read) by the provider." }),
  failed: Type.Integer({ description: "Refused by the provider at once, or reported undelivered/failed later." }),
  verified: Type.Integer(),
  expired: Type.Integer({ description: "Never verified; lifetime over." }),
  locked: Type.Integer({ description: "Codes ended by too many wrong tries." }),
  conversion_rate: Type.Number({ description: "verified / sent." }),
  spend_usd: Type.Number({ description: "The provider's price where it said, else the estimate." }),
};

const Filters = Type.Object({ purpose: Nullable(Type.String()), channel: Nullable(Type.String()), country: Nullable(Type.String()) });

const SummaryAnswer = Type.Object({
  from: Type.String({ format: "date-time" }),
  to: Type.String({ format: "date-time" }),
  filters: Filters,
  totals: Type.Object({ ...countFields, refused: Type.Integer({ description: "Sends refused by a protection rule." }) }),
  time_to_verify: Type.Object({
    median_seconds: Nullable(Type.Integer()),
    p95_seconds: Nullable(Type.Integer()),
    verified: Type.Integer(),
  }),
  by_country: Type.Array(Type.Object({ country: Nullable(Type.String()), ...countFields })),
  by_purpose: Type.Array(Type.Object({ purpose: Type.String(), ...countFields })),
  by_channel: Type.Array(Type.Object({ channel: Type.String(), ...countFields })),
  failures_by_error_code: Type.Array(Type.Object({ error_code: Nullable(Type.String()), count: Type.Integer() })),
  refusals_by_rule: Type.Array(Type.Object({ rule: Type.String(), count: Type.Integer() })),
  budget: Nullable(
    Type.Object(
      { period: Type.String(), budget_usd: Type.Number(), spent_usd: Type.Number(), reserved_usd: Type.Number() },
      { description: "The SMS budget's current period (SMS_BUDGET_USD); null when none is set." },
    ),
  ),
});

const TimeseriesAnswer = Type.Object({
  from: Type.String({ format: "date-time" }),
  to: Type.String({ format: "date-time" }),
  group_by: Type.String(),
  filters: Filters,
  points: Type.Array(Type.Object({ t: Type.String({ format: "date-time" }), ...countFields, refused: Type.Integer() })),
});

/** Reports for users whose token carries `role: "admin"` (`vericode user promote <username>`). */
export const analyticsRoutes: FastifyPluginAsyncTypebox<{ vericode: Vericode }> = async (app, { vericode }) => {
  const authenticate = bearerAuth(vericode.tokens);
  const admin = async (request: Parameters<typeof subject>[0]) => {
    if (subject(request).role !== "admin") {
      throw new VericodeError("forbidden", "Reports need the admin role: `vericode user promote <username>`, then sign in again.");
    }
  };
  const run = async <T>(work: () => Promise<T>): Promise<T> =>
    work().catch((error: unknown) => {
      if (error instanceof VericodeError) throw error;
      throw new VericodeError("service_unavailable", "The report could not be read from the database. Try again shortly.", {
        retryAfter: 5,
        cause: error,
      });
    });

  app.get(
    "/api/v1/analytics/summary/",
    {
      preHandler: [authenticate, admin],
      schema: {
        tags: ["analytics"],
        summary: "Headline figures of a time range: sends, delivery, verification, conversion, time to verify, refusals, spend",
        security: [{ bearer: [] }],
        querystring: ReportParams,
        response: { 200: SummaryAnswer, ...problems(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const now = vericode.clock.now().getTime();
      const query = reportQuery(request.query, now);
      return run(async () => {
        const [summary, budget] = await Promise.all([vericode.analytics.summary(query, now), vericode.protection.budgetState(now)]);
        return {
          ...summary,
          budget:
            budget === null
              ? null
              : {
                  period: budget.period,
                  budget_usd: microsToUsd(budget.capMicros),
                  spent_usd: microsToUsd(budget.spentMicros),
                  reserved_usd: microsToUsd(budget.reservedMicros),
                },
        };
      });
    },
  );

  app.get(
    "/api/v1/analytics/timeseries/",
    {
      preHandler: [authenticate, admin],
      schema: {
        tags: ["analytics"],
        summary: "The same figures per day or hour (UTC), every bucket of the range included",
        security: [{ bearer: [] }],
        querystring: ReportParams,
        response: { 200: TimeseriesAnswer, ...problems(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const now = vericode.clock.now().getTime();
      return run(() => vericode.analytics.timeseries(reportQuery(request.query, now), now));
    },
  );
};
