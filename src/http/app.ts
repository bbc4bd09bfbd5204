import { randomUUID, timingSafeEqual } from "node:crypto";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from "fastify";
import helmet from "helmet";
import { VericodeError } from "../errors.js";
import type { Vericode } from "../vericode.js";
import { answerError, preventCaching, vericodePlugin } from "./plugin.js";
import { sendProblem } from "./problem.js";
import { API_REFERENCE, dashboard, errorCatalogue, webDemo } from "./web.js";

/** 16 KiB: far above any valid request, far below anything that costs memory. */
export const BODY_LIMIT = 16 * 1024;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Helmet's security headers, computed once: they are the same for every response, and building them per
 * request (as @fastify/helmet does) costs more than the rest of a bare request. /docs sets its own CSP.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = (() => {
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: string) => {
      headers[name.toLowerCase()] = value;
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  const middleware = helmet({
    contentSecurityPolicy: {
      directives: { "script-src": ["'self'"], "style-src": ["'self'", "'unsafe-inline'"], "img-src": ["'self'", "data:"] },
    },
  });
  middleware({} as never, response as never, () => {});
  return Object.freeze(headers);
})();

/**
 * `GET /metrics` in Prometheus' text format. With METRICS_TOKEN set it asks for
 * `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time); without it, it is open and
 * belongs off the public network.
 */
function metricsRoute(app: FastifyInstance, vericode: Vericode): void {
  const token = vericode.config.metricsToken === null ? null : Buffer.from(`Bearer ${vericode.config.metricsToken}`);
  app.get("/metrics", { schema: { hide: true } }, async (request, reply) => {
    if (token !== null) {
      const given = Buffer.from(request.headers.authorization ?? "");
      if (given.length !== token.length || !timingSafeEqual(given, token)) {
        throw new VericodeError("unauthorized", "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.");
      }
    }
    const registry = vericode.metrics.registry;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}

/** Builds the HTTP application around a service, without listening (tests use `inject`). */
export async function buildApp(vericode: Vericode): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: vericode.log as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    routerOptions: { ignoreTrailingSlash: true },
    // A caller's X-Request-Id is kept when it is a sane token, so one id follows a request across services.
    genReqId: (request) => {
      const given = request.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true } },
    // X-Forwarded-For is believed only from the listed proxies; the client's address feeds the per-IP limit.
    trustProxy: vericode.config.protection.trustedProxies.length === 0 ? false : vericode.config.protection.trustedProxies,
    // One line per request, written when it ends (the onResponse hook below), instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.addHook("onRequest", (request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    reply.header("x-request-id", request.id);
    // Every /api/ answer, the 404 of an unknown path included (the plugin's routes set it themselves too).
    preventCaching(request, reply);
    done();
  });
  app.addHook("onResponse", (request, reply, done) => {
    request.log.info(
      { method: request.method, url: request.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 },
      "request",
    );
    done();
  });
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "vericode",
        version: "0.1.0",
        description:
          "Self-hosted verification codes: send one-time codes by SMS through Twilio and verify them. Every error outside `/v2` (the native API under `/api/v1`, and the rest) is application/problem+json with a stable `code`: see [the error catalogue](/docs/errors.md) for what each code means and how to solve it. The Twilio Verify v2-compatible API under `/v2` (tag `verify`) answers Twilio's error body instead, as application/json: `{code, message, more_info, status}` with Twilio's numeric codes (20003, 20404, 60200…) and vericode's `details`, so that Twilio's SDKs raise the exception they raise for Twilio; its bodies are form-encoded (application/x-www-form-urlencoded), as Twilio's.",
      },
      servers: [{ url: vericode.config.publicBaseUrl }],
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
          // The /v2 API (Twilio Verify v2): VERIFY_ACCOUNT_SID and VERIFY_AUTH_TOKEN, or an API key's sid and secret.
          basic: { type: "http", scheme: "basic" },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, API_REFERENCE);
  errorCatalogue(app);
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  await app.register(vericodePlugin, { vericode });
  if (vericode.config.webDemo) webDemo(app);
  dashboard(app);
  metricsRoute(app, vericode);

  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, new VericodeError("not_found", `There is no ${request.method} ${request.url.split("?")[0]}.`)),
  );
  app.setErrorHandler((error, request, reply) => answerError(error, request, reply));
  return app;
}
