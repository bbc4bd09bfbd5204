import { Type } from "@sinclair/typebox";
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from "fastify";
import { failClosed } from "../../errors.js";
import type { VerifyServiceRecord } from "../../store/verify-store.js";
import type { Vericode } from "../../vericode.js";
import { invalidParameter, notFound, VerifyError } from "../../verify/errors.js";
import { formParams, integerParam, type Params, pageOf, param } from "../../verify/params.js";
import { checkRequest, startRequest } from "../../verify/requests.js";
import { newService, serviceWith } from "../../verify/settings.js";
import { isSid, newSid } from "../../verify/sids.js";
import type { VerifyService } from "../../verify/verify-service.js";
import {
  checkBasic,
  listPage,
  renderBucket,
  renderCheck,
  renderRateLimit,
  renderService,
  renderVerification,
  sendTwilioError,
  type Wire,
} from "../verify-wire.js";

const guard = failClosed("database");

interface Ctx {
  verify: VerifyService;
  wire: Wire;
  now: () => number;
}

type Req = FastifyRequest<{ Params: Record<string, string> }>;

/** Twilio's error body, as every /v2 error answers it. */
const TwilioErrorBody = Type.Object(
  {
    code: Type.Integer({ examples: [60200] }),
    message: Type.String({ examples: ["Invalid parameter: To"] }),
    more_info: Type.String({ examples: ["https://www.twilio.com/docs/errors/60200"] }),
    status: Type.Integer({ examples: [400] }),
    details: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: "vericode's explanation (the SDK's RestException.details)" }),
    ),
  },
  { description: "Twilio's error body (docs/twilio-verify.md lists the codes)" },
);

/** Form parameters of a route, for the OpenAPI document: PascalCase, as Twilio's. */
function form(fields: Record<string, string>, required: string[] = []) {
  const properties = Object.fromEntries(
    Object.entries(fields).map(([name, description]) => [
      name,
      required.includes(name) ? Type.String({ description }) : Type.Optional(Type.String({ description })),
    ]),
  );
  return Type.Object(properties);
}

/**
 * What each route is, for the OpenAPI document. The schemas document; they do not validate (the scope's
 * validator passes everything and its serializer is JSON.stringify): the /v2 API checks its parameters
 * itself, to answer Twilio's 60200 naming the parameter.
 */
function doc(summary: string, description?: string, body?: ReturnType<typeof form>) {
  return {
    schema: {
      tags: ["verify"],
      summary,
      ...(description === undefined ? {} : { description }),
      ...(body === undefined ? {} : { body, consumes: ["application/x-www-form-urlencoded"] }),
      security: [{ basic: [] }],
      response: { "4xx": TwilioErrorBody, "5xx": TwilioErrorBody },
    },
  };
}

const SERVICE_FORM = form({
  FriendlyName: "Printed in the message: 1-30 letters, digits, spaces, - or _, at most 4 digits. Required on create.",
  CodeLength: "4 to 10 (default 6).",
  LookupEnabled: "true: `lookup` carries the number's type.",
  SkipSmsToLandlines: "true (with LookupEnabled): no SMS to a landline (60205).",
  DoNotShareWarningEnabled: "true: the message warns not to share the code.",
  DtmfInputRequired: "Stored and shown; calls do not ask for a key press.",
  TtsName: "Stored and shown.",
});
const START_FORM = form(
  {
    To: "E.164 number, or an email address for Channel=email.",
    Channel: "sms, call, whatsapp, email or auto (sms).",
    Locale: "The message's language (en, es, pt, fr, de, it, nl, pl, sv, ru, zh, ja; others fall back).",
    CustomFriendlyName: "The name in this message instead of the service's.",
    AppHash: "Android SMS Retriever hash (11 characters).",
    DeviceIp: "The end user's address: it counts on RATE_LIMIT_IP.",
    RateLimits: 'JSON: {"<unique name>": "<value>"} counted on the service\'s rate limits.',
    ChannelConfiguration: 'JSON, email: {"from": "...", "from_name": "..."}.',
  },
  ["To", "Channel"],
);
const CHECK_FORM = form(
  { Code: "4-10 characters.", To: "The verification's To (or VerificationSid).", VerificationSid: "The verification's VE sid (or To)." },
  ["Code"],
);

/**
 * The Twilio Verify v2-compatible API (docs/twilio-verify.md): the official `twilio` SDK talks to it with
 * `client.verify.baseUrl` set to PUBLIC_BASE_URL. Off (404 with the reason) until VERIFY_ACCOUNT_SID and
 * VERIFY_AUTH_TOKEN are set. Its own scope: form bodies, Basic auth, and Twilio's error body instead of problem+json.
 */
export const verifyRoutes: FastifyPluginAsync<{ vericode: Vericode }> = async (app, { vericode }) => {
  const credentials = vericode.config.verify;
  const ctx: Ctx = {
    verify: vericode.verify,
    wire: { base: `${vericode.config.publicBaseUrl}/v2`, accountSid: credentials?.accountSid ?? "" },
    now: () => vericode.clock.now().getTime(),
  };
  await app.register(
    async (v2) => {
      v2.removeAllContentTypeParsers();
      v2.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_request, body, done) =>
        done(null, formParams(body as string)),
      );
      // Any other body is read as no parameters: Twilio's clients send forms, and a check names what is missing.
      v2.addContentTypeParser("*", { parseAs: "string" }, (_request, _body, done) => done(null, {}));
      v2.setValidatorCompiler(() => () => true);
      v2.setSerializerCompiler(() => (data) => JSON.stringify(data));
      v2.addHook("onRequest", async (request) => {
        // Off: every path is 404, and says how to turn it on (the routes stay in the OpenAPI document).
        if (credentials === null) {
          throw notFound(request.url.split("?")[0] ?? "", { reason: "The /v2 API is off: set VERIFY_ACCOUNT_SID and VERIFY_AUTH_TOKEN." });
        }
        checkBasic(request.headers.authorization, credentials);
      });
      v2.setErrorHandler((error, request, reply) => {
        if (!(error instanceof VerifyError) || error.status >= 500) request.log.error({ err: error }, "verify api error");
        return sendTwilioError(reply, error);
      });
      v2.setNotFoundHandler((request, reply) => sendTwilioError(reply, notFound(request.url.split("?")[0] ?? "")));
      await v2.register(serviceRoutes, ctx);
      await v2.register(verificationRoutes, ctx);
      await v2.register(rateLimitRoutes, ctx);
    },
    { prefix: "/v2" },
  );
};

function body(request: FastifyRequest): Params {
  return (request.body ?? {}) as Params;
}

function query(request: FastifyRequest): Params {
  return (request.query ?? {}) as Params;
}

function path(request: FastifyRequest): string {
  return request.url.split("?")[0] ?? request.url;
}

/** The service a path names, or 20404. */
async function serviceOf(ctx: Ctx, request: Req, name = "ServiceSid"): Promise<VerifyServiceRecord> {
  const sid = request.params[name] ?? "";
  if (!isSid("VA", sid)) throw notFound(path(request));
  return ctx.verify.service(sid, path(request));
}

const serviceRoutes: FastifyPluginAsync<Ctx> = async (app: FastifyInstance, ctx) => {
  app.post(
    "/Services",
    doc("Create a Verify service", "201 with the service. FriendlyName is required.", SERVICE_FORM),
    async (request, reply) => {
      const service = newService(newSid("VA"), body(request), ctx.now());
      await guard(ctx.verify.store.createService(service));
      return reply.code(201).send(renderService(ctx.wire, service));
    },
  );
  app.get("/Services", doc("List Verify services"), async (request) => {
    const at = pageOf(query(request));
    const page = await guard(ctx.verify.store.listServices({ offset: at.page * at.size, size: at.size }));
    const items = page.items.map((service) => renderService(ctx.wire, service));
    return listPage(`${ctx.wire.base}/Services`, "services", at, items, page.more);
  });
  app.get("/Services/:Sid", doc("Fetch a Verify service"), async (request: Req) =>
    renderService(ctx.wire, await serviceOf(ctx, request, "Sid")),
  );
  app.post("/Services/:Sid", doc("Update a Verify service", undefined, SERVICE_FORM), async (request: Req) => {
    const service = serviceWith(body(request), await serviceOf(ctx, request, "Sid"));
    const updated = { ...service, updatedAt: ctx.now() };
    if (!(await ctx.verify.updateService(updated))) throw notFound(path(request));
    return renderService(ctx.wire, updated);
  });
  app.delete("/Services/:Sid", doc("Delete a Verify service", "204; its pending verifications end."), async (request: Req, reply) => {
    const service = await serviceOf(ctx, request, "Sid");
    if (!(await ctx.verify.deleteService(service.sid))) throw notFound(path(request));
    return reply.code(204).send();
  });
};

const verificationRoutes: FastifyPluginAsync<Ctx> = async (app: FastifyInstance, ctx) => {
  app.post(
    "/Services/:ServiceSid/Verifications",
    doc(
      "Start a verification",
      "201. A second start for the same To while one is pending sends the same code again (at most 5 sends: 60203).",
      START_FORM,
    ),
    async (request: Req, reply) => {
      const service = await serviceOf(ctx, request);
      const view = await ctx.verify.start(service, startRequest(body(request)));
      return reply.code(201).send(renderVerification(ctx.wire, view));
    },
  );
  app.get("/Services/:ServiceSid/Verifications/:Sid", doc("Fetch a pending verification"), async (request: Req) => {
    const service = await serviceOf(ctx, request);
    return renderVerification(ctx.wire, await ctx.verify.fetch(service, request.params.Sid ?? "", path(request)));
  });
  app.post(
    "/Services/:ServiceSid/Verifications/:Sid",
    doc("Cancel or approve a pending verification", undefined, form({ Status: "canceled or approved" }, ["Status"])),
    async (request: Req) => {
      const service = await serviceOf(ctx, request);
      const status = param(body(request), "Status");
      if (status !== "canceled" && status !== "approved") throw invalidParameter("Status", "Status is canceled or approved.");
      return renderVerification(ctx.wire, await ctx.verify.end(service, request.params.Sid ?? "", status, path(request)));
    },
  );
  app.post(
    "/Services/:ServiceSid/VerificationCheck",
    doc(
      "Check a code",
      "200: approved, or pending with valid false for a wrong code; 60202 after 5 checks; 404 once it is over.",
      CHECK_FORM,
    ),
    async (request: Req) => {
      const service = await serviceOf(ctx, request);
      return renderCheck(ctx.wire, await ctx.verify.check(service, checkRequest(body(request)), path(request)));
    },
  );
};

const rateLimitRoutes: FastifyPluginAsync<Ctx> = async (app: FastifyInstance, ctx) => {
  const limitOf = async (request: Req) => {
    const service = await serviceOf(ctx, request);
    const limit = await guard(ctx.verify.store.getRateLimit(service.sid, request.params.RateLimitSid ?? request.params.Sid ?? ""));
    if (limit === null) throw notFound(path(request));
    return limit;
  };
  app.post("/Services/:ServiceSid/RateLimits", doc("Create a rate limit"), async (request: Req, reply) => {
    const service = await serviceOf(ctx, request);
    const params = body(request);
    const uniqueName = param(params, "UniqueName");
    if (uniqueName === undefined || !/^[A-Za-z0-9_.-]{1,191}$/.test(uniqueName)) {
      throw invalidParameter("UniqueName", "UniqueName is 1 to 191 letters, digits, _ . or -.");
    }
    const now = ctx.now();
    const limit = {
      sid: newSid("RK"),
      serviceSid: service.sid,
      uniqueName,
      description: param(params, "Description") ?? null,
      createdAt: now,
      updatedAt: now,
    };
    if ((await guard(ctx.verify.store.createRateLimit(limit))) === "duplicate") {
      throw invalidParameter("UniqueName", `The service already has a rate limit named ${uniqueName}.`);
    }
    return reply.code(201).send(renderRateLimit(ctx.wire, limit));
  });
  app.get("/Services/:ServiceSid/RateLimits", doc("List rate limits"), async (request: Req) => {
    const service = await serviceOf(ctx, request);
    const at = pageOf(query(request));
    const page = await guard(ctx.verify.store.listRateLimits(service.sid, { offset: at.page * at.size, size: at.size }));
    const items = page.items.map((limit) => renderRateLimit(ctx.wire, limit));
    return listPage(`${ctx.wire.base}/Services/${service.sid}/RateLimits`, "rate_limits", at, items, page.more);
  });
  app.get("/Services/:ServiceSid/RateLimits/:Sid", doc("Fetch a rate limit"), async (request: Req) =>
    renderRateLimit(ctx.wire, await limitOf(request)),
  );
  app.post("/Services/:ServiceSid/RateLimits/:Sid", doc("Update a rate limit"), async (request: Req) => {
    const limit = await limitOf(request);
    const updated = await guard(
      ctx.verify.store.updateRateLimit(limit.serviceSid, limit.sid, param(body(request), "Description") ?? limit.description, ctx.now()),
    );
    if (updated === null) throw notFound(path(request));
    return renderRateLimit(ctx.wire, updated);
  });
  app.delete("/Services/:ServiceSid/RateLimits/:Sid", doc("Delete a rate limit and its buckets"), async (request: Req, reply) => {
    const limit = await limitOf(request);
    if (!(await guard(ctx.verify.store.deleteRateLimit(limit.serviceSid, limit.sid)))) throw notFound(path(request));
    return reply.code(204).send();
  });
  await app.register(bucketRoutes, { ...ctx, limitOf });
};

const bucketRoutes: FastifyPluginAsync<Ctx & { limitOf: (request: Req) => Promise<{ sid: string; serviceSid: string }> }> = async (
  app,
  ctx,
) => {
  const base = "/Services/:ServiceSid/RateLimits/:RateLimitSid/Buckets";
  const bucketOf = async (request: Req) => {
    const limit = await ctx.limitOf(request);
    const bucket = await guard(ctx.verify.store.getBucket(limit.sid, request.params.Sid ?? ""));
    if (bucket === null) throw notFound(path(request));
    return bucket;
  };
  app.post(
    base,
    doc("Create a bucket: at most Max starts per Interval seconds for one value of the rate limit"),
    async (request: Req, reply) => {
      const limit = await ctx.limitOf(request);
      const params = body(request);
      const max = integerParam(params, "Max", 1, 1_000_000);
      const interval = integerParam(params, "Interval", 1, 86_400 * 31);
      if (max === undefined) throw invalidParameter("Max", "Max is required.");
      if (interval === undefined) throw invalidParameter("Interval", "Interval is required (seconds).");
      const now = ctx.now();
      const bucket = {
        sid: newSid("BL"),
        rateLimitSid: limit.sid,
        serviceSid: limit.serviceSid,
        max,
        interval,
        createdAt: now,
        updatedAt: now,
      };
      if ((await guard(ctx.verify.store.createBucket(bucket))) === "duplicate") throw duplicateInterval();
      return reply.code(201).send(renderBucket(ctx.wire, bucket));
    },
  );
  app.get(base, doc("List buckets"), async (request: Req) => {
    const limit = await ctx.limitOf(request);
    const at = pageOf(query(request));
    const page = await guard(ctx.verify.store.listBuckets(limit.sid, { offset: at.page * at.size, size: at.size }));
    const items = page.items.map((bucket) => renderBucket(ctx.wire, bucket));
    return listPage(`${ctx.wire.base}/Services/${limit.serviceSid}/RateLimits/${limit.sid}/Buckets`, "buckets", at, items, page.more);
  });
  app.get(`${base}/:Sid`, doc("Fetch a bucket"), async (request: Req) => renderBucket(ctx.wire, await bucketOf(request)));
  app.post(`${base}/:Sid`, doc("Update a bucket"), async (request: Req) => {
    const bucket = await bucketOf(request);
    const params = body(request);
    const max = integerParam(params, "Max", 1, 1_000_000);
    const interval = integerParam(params, "Interval", 1, 86_400 * 31);
    const change = { ...(max === undefined ? {} : { max }), ...(interval === undefined ? {} : { interval }) };
    const updated = await guard(ctx.verify.store.updateBucket(bucket.rateLimitSid, bucket.sid, change, ctx.now()));
    if (updated === "duplicate") throw duplicateInterval();
    if (updated === null) throw notFound(path(request));
    return renderBucket(ctx.wire, updated);
  });
  app.delete(`${base}/:Sid`, doc("Delete a bucket"), async (request: Req, reply) => {
    const bucket = await bucketOf(request);
    if (!(await guard(ctx.verify.store.deleteBucket(bucket.rateLimitSid, bucket.sid)))) throw notFound(path(request));
    return reply.code(204).send();
  });
};

function duplicateInterval(): VerifyError {
  return new VerifyError(60211, { details: { reason: "The rate limit has a bucket with this Interval already." } });
}
