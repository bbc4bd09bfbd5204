import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { VericodeError } from "../errors.js";
import { sendProblem } from "./problem.js";

/** The methods a path is refused with 405 when its routes do not take them; others stay 404. */
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** Marks the 405 routes themselves, which the collector leaves out. */
const REFUSAL = { methodNotAllowed: true };

/** How a scope answers the refusal: `allow` is the Allow header's value, already set on the reply. */
export type Refuse = (request: FastifyRequest, reply: FastifyReply, allow: string) => FastifyReply | Promise<FastifyReply>;

/** The native API's answer: 405 method_not_allowed, as problem+json. */
const refuseWithProblem: Refuse = (request, reply, allow) => {
  const path = request.url.split("?")[0];
  return sendProblem(request, reply, new VericodeError("method_not_allowed", `${path} does not take ${request.method}: use ${allow}.`));
};

/**
 * 405 method_not_allowed with `Allow` (RFC 9110 §15.5.6) for a known path asked with a method it does not
 * take (`PUT /api/v1/auth/register/`), instead of a 404 that says the path does not exist. Call it before
 * a plugin's routes, and the function it returns after them: it adds, for each of their paths, one route
 * that takes the other methods and answers the problem before the body is read.
 *
 * ```ts
 * const refuseOtherMethods = methodNotAllowed(app);
 * app.post("/api/v1/auth/register/", …);
 * refuseOtherMethods();
 * ```
 *
 * `refuse` answers in the scope's own error body (the /v2 API: Twilio's 20004); the paths of routes
 * declared in child plugins count too, and a scope's prefix is applied once.
 */
export function methodNotAllowed(app: FastifyInstance, refuse: Refuse = refuseWithProblem): () => void {
  const taken = new Map<string, Set<string>>();
  app.addHook("onRoute", (route) => {
    if ((route.config as typeof REFUSAL | undefined)?.methodNotAllowed === true) return;
    const methods = taken.get(route.url) ?? new Set<string>();
    for (const method of [route.method].flat()) methods.add(method);
    taken.set(route.url, methods);
  });
  return () => {
    for (const [url, methods] of [...taken]) {
      const allow = METHODS.filter((method) => methods.has(method)).join(", ");
      const others = METHODS.filter((method) => !methods.has(method));
      app.route({
        method: others,
        // The collected URL carries the scope's prefix, which app.route adds again.
        url: url.slice(app.prefix.length),
        config: REFUSAL,
        schema: { hide: true },
        onRequest: async (request, reply) => {
          reply.header("allow", allow);
          return refuse(request, reply, allow);
        },
        handler: async () => undefined,
      });
    }
  };
}
