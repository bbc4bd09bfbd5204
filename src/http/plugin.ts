import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import type { VericodeError } from "../errors.js";
import { createVericode, type Vericode, type VericodeOptions } from "../vericode.js";
import { sendProblem, toVericodeError } from "./problem.js";
import { analyticsRoutes } from "./routes/analytics.js";
import { authRoutes } from "./routes/auth.js";
import { healthRoutes } from "./routes/health.js";
import { messagingRoutes } from "./routes/messaging.js";
import { twilioStatusRoutes } from "./routes/twilio-status.js";
import { verifyRoutes } from "./routes/verify-v2.js";
import { Problem } from "./schemas.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The vericode service mounted by `vericodePlugin`. */
    vericode: Vericode;
  }
}

export interface VericodePluginOptions {
  /** A service built with createVericode(); when absent, the plugin builds one (and closes it with the app). */
  vericode?: Vericode;
  /** Options for the service the plugin builds. */
  options?: VericodeOptions;
}

/**
 * The routes, in their own encapsulated context so that their error handler (problem+json, no leaks)
 * does not replace the host application's.
 */
const routes: FastifyPluginAsync<{ vericode: Vericode }> = async (app, { vericode }) => {
  app.addSchema(Problem);
  // JSON only: a text body would otherwise reach validation and read as a confusing 400.
  app.removeContentTypeParser("text/plain");
  app.decorateRequest("auth", null);
  app.setErrorHandler((error, request, reply) => answerError(error, request, reply));
  // Here too, not only in buildApp: a host application that mounts the plugin gets it on vericode's routes.
  // A callback hook rather than an async one: no promise per request for two headers.
  app.addHook("onRequest", (request, reply, done) => {
    preventCaching(request, reply);
    done();
  });
  await app.register(healthRoutes, { vericode });
  await app.register(authRoutes, { vericode });
  await app.register(messagingRoutes, { vericode });
  await app.register(twilioStatusRoutes, { vericode });
  await app.register(analyticsRoutes, { vericode });
  // Twilio Verify v2's wire format, errors and auth in a scope of their own (off without VERIFY_ACCOUNT_SID).
  await app.register(verifyRoutes, { vericode });
};

/**
 * API answers carry tokens and codes' state: never stored by a cache (RFC 6749 §5.1), problems included;
 * Pragma for HTTP/1.0 proxies.
 */
export function preventCaching(request: FastifyRequest, reply: FastifyReply): void {
  if (request.url.startsWith("/api/")) reply.header("cache-control", "no-store").header("pragma", "no-cache");
}

export function answerError(
  error: unknown,
  request: Parameters<typeof sendProblem>[0],
  reply: Parameters<typeof sendProblem>[1],
): ReturnType<typeof sendProblem> {
  const problem: VericodeError = toVericodeError(error instanceof Error ? error : new Error(String(error)));
  if (problem.code === "internal_error") request.log.error({ err: error }, "unhandled error");
  else if (problem.code === "service_unavailable") request.log.error({ err: problem.cause }, problem.message);
  return sendProblem(request, reply, problem);
}

/**
 * Mounts vericode's API into an existing Fastify application and decorates it with `app.vericode`.
 *
 * ```ts
 * await app.register(vericodePlugin, { options: { env: process.env } });
 * ```
 */
export const vericodePlugin = fp<VericodePluginOptions>(
  async (app, options) => {
    const vericode = options.vericode ?? (await createVericode(options.options));
    app.decorate("vericode", vericode);
    if (options.vericode === undefined) app.addHook("onClose", async () => vericode.close());
    await app.register(routes, { vericode });
  },
  { name: "vericode", fastify: "5.x" },
);
