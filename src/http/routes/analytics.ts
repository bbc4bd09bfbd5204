import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { ReportParams, reportQuery } from "../../analytics/range.js";
import { SummaryAnswer, Timeseries } from "../../analytics/schema.js";
import { VericodeError } from "../../errors.js";
import { microsToUsd } from "../../limits/prices.js";
import type { Vericode } from "../../vericode.js";
import { bearerAuth, subject } from "../auth.js";
import { methodNotAllowed } from "../method-not-allowed.js";
import { problems } from "../schemas.js";
import { answerEveryField } from "../validation.js";

/** Reports for users whose token carries `role: "admin"` (`vericode user promote <username>`). */
export const analyticsRoutes: FastifyPluginAsyncTypebox<{ vericode: Vericode }> = async (app, { vericode }) => {
  answerEveryField(app, vericode);
  const refuseOtherMethods = methodNotAllowed(app);
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

  refuseOtherMethods();
};
