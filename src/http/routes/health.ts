import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { VericodeError } from "../../errors.js";
import type { Vericode } from "../../vericode.js";
import { problems } from "../schemas.js";

export const healthRoutes: FastifyPluginAsyncTypebox<{ vericode: Vericode }> = async (app, { vericode }) => {
  app.get(
    "/healthz",
    {
      schema: {
        tags: ["health"],
        summary: "Liveness: the process answers",
        response: { 200: Type.Object({ status: Type.Literal("ok") }) },
      },
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/readyz",
    {
      schema: {
        tags: ["health"],
        summary: "Readiness: the database (and the rate limiter's Redis, when configured) answers",
        response: {
          200: Type.Object({ status: Type.Literal("ready"), database: Type.String(), limiter: Type.String() }),
          ...problems(503),
        },
      },
    },
    async () => {
      try {
        await vericode.store.ping();
      } catch (error) {
        throw new VericodeError("service_unavailable", "The database is not reachable.", { retryAfter: 5, cause: error });
      }
      const limiter = vericode.protection.limiter;
      try {
        await limiter.ping();
      } catch (error) {
        throw new VericodeError("service_unavailable", "The rate limiter's Redis is not reachable: sends fail closed.", {
          retryAfter: 5,
          cause: error,
        });
      }
      return { status: "ready" as const, database: vericode.store.dialect, limiter: limiter.name };
    },
  );
};
