import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { reportQuery } from "../../analytics/range.js";
import { SummaryAnswer, Timeseries } from "../../analytics/schema.js";
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
    purpose: Type.Optional(
      Type.String({ description: "Only this purpose: registration, login, password_reset, or `verify:<service sid>` for a /v2 service." }),
    ),
    service: Type.Optional(Type.String({ description: "Only this Twilio Verify v2 service's verifications (its `VA…` sid)." })),
    channel: Type.Optional(Type.String({ description: "Only this channel (sms, whatsapp, voice, email); refusals have none." })),
    country: Type.Optional(Type.String({ description: "Only this country, ISO 3166 alpha-2 (CR)." })),
  },
  { additionalProperties: false },
);

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
        response: { 200: Timeseries, ...problems(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const now = vericode.clock.now().getTime();
      return run(() => vericode.analytics.timeseries(reportQuery(request.query, now), now));
    },
  );
};
