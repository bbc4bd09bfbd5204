import { type TSchema, Type } from "@sinclair/typebox";
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from "fastify";
import { failClosed } from "../../errors.js";
import type { VerifyServiceRecord } from "../../store/verify-store.js";
import type { Vericode } from "../../vericode.js";
import { invalidParameter, missingParameter, notFound, VerifyError } from "../../verify/errors.js";
import { formParams, integerParam, type Params, pageOf, param } from "../../verify/params.js";
import { checkRequest, startRequest } from "../../verify/requests.js";
import { newService, serviceWith } from "../../verify/settings.js";
import { isSid, newSid } from "../../verify/sids.js";
import type { VerifyService } from "../../verify/verify-service.js";
import { methodNotAllowed } from "../method-not-allowed.js";
import {
  BUCKET_INTERVAL,
  BUCKET_MAX,
  BucketBody,
  BucketListBody,
  basicAuth,
  CheckBody,
  explainUnreadBody,
  listPage,
  RateLimitBody,
  RateLimitListBody,
  renderBucket,
  renderCheck,
  renderRateLimit,
  renderService,
  renderVerification,
  ServiceBody,
  ServiceListBody,
  sendTwilioError,
  VerificationBody,
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
  {
    additionalProperties: false,
    description: "Twilio's error body, application/json (docs/twilio-verify.md lists the codes)",
  },
);

/** Form parameters of a route, for the OpenAPI document: PascalCase, as Twilio's, each a string in the form. */
function form(fields: Record<string, string>, options: { required?: string[]; description?: string } = {}) {
  const required = options.required ?? [];
  const properties = Object.fromEntries(
    Object.entries(fields).map(([name, description]) => [
      name,
      required.includes(name) ? Type.String({ description }) : Type.Optional(Type.String({ description })),
    ]),
  );
  return Type.Object(properties, options.description === undefined ? {} : { description: options.description });
}

/** A list's query: Twilio's paging, as pageOf checks it (anything else is 60200 naming it). */
const PAGE_QUERY = Type.Object({
  PageSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: "Items per page: 1 to 1000." })),
  Page: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0, description: "The page, from 0." })),
});

/** A delete's answer: 204, no body. */
const NoBody = Type.Null({ description: "Deleted: no body." });

interface DocOptions {
  description?: string;
  body?: ReturnType<typeof form>;
  query?: typeof PAGE_QUERY;
  /** The success status and the body it answers. */
  success: [status: 200 | 201, body: TSchema] | [status: 204, body: typeof NoBody];
}

/**
 * What each route is, for the OpenAPI document. The schemas document; they do not validate (the scope's
 * validator passes everything and its serializer is JSON.stringify): the /v2 API checks its parameters
 * itself, to answer Twilio's 60200 naming the parameter, and renders its answers with verify-wire.ts,
 * whose functions return the types of the body schemas shown here.
 */
function doc(summary: string, options: DocOptions) {
  const { description, body, query, success } = options;
  return {
    schema: {
      tags: ["verify"],
      summary,
      ...(description === undefined ? {} : { description }),
      ...(body === undefined ? {} : { body, consumes: ["application/x-www-form-urlencoded"] }),
      ...(query === undefined ? {} : { querystring: query }),
      security: [{ basic: [] }],
      response: { [success[0]]: success[1], "4xx": TwilioErrorBody, "5xx": TwilioErrorBody },
    },
  };
}

/** A parameter Twilio has and vericode refuses: its description in the document. */
function refused(what: string): string {
  return `60200: vericode does not offer ${what}.`;
}

function serviceForm(required: string[]) {
  return form(
    {
      FriendlyName:
        "Printed in every message: 1 to 30 letters, digits, spaces, - or _, with at most 4 digits and no links." +
        (required.includes("FriendlyName") ? "" : " Omitted: unchanged."),
      CodeLength: "4 to 10 (default 6).",
      LookupEnabled: "true or false (default false): true fills a verification's `lookup` with the number's type.",
      SkipSmsToLandlines: "true or false (default false): with LookupEnabled, an sms start to a landline is 403 / 60205 and sends nothing.",
      DoNotShareWarningEnabled: "true or false (default false): the message warns not to share the code.",
      DtmfInputRequired: "true or false (default true): stored and shown; calls do not ask for a key press.",
      TtsName: "Stored and shown (up to 100 characters); calls read the friendly name.",
      "Whatsapp.From": "Stored and shown (up to 100 characters); WhatsApp goes from TWILIO_WHATSAPP_FROM.",
      "Whatsapp.MsgServiceSid": "Stored and shown (up to 34 characters); WhatsApp goes from TWILIO_WHATSAPP_FROM.",
      Psd2Enabled: `false, or true: ${refused("PSD2")}`,
      CustomCodeEnabled: `false, or true: ${refused("custom codes")}`,
      VerifyEventSubscriptionEnabled: `false, or true: ${refused("Verify events")}`,
      DefaultTemplateSid: refused("templates"),
    },
    {
      required,
      description:
        "Booleans are true or false (else 60200). Any Push.*, Totp.* or Passkeys.* parameter is 60200: vericode offers neither Push, TOTP nor passkeys. Other parameters are ignored.",
    },
  );
}

const START_FORM = form(
  {
    To: "E.164 (+50688887777), or an email address for Channel=email. 60200 when malformed, or when well-formed but not a valid number (details.reason says why).",
    Channel: "sms, call, whatsapp, email, or auto (sent as sms). Another, or one not configured on this vericode, is 60200.",
    Locale: "The message's language (en, es, pt, fr, de, it, nl, pl, sv, ru, zh, ja; others fall back). A malformed tag is 60200.",
    CustomFriendlyName: "The name in this message instead of the service's (FriendlyName's rule).",
    AppHash: "Android SMS Retriever hash (11 characters): the SMS starts with <#> and ends with the hash.",
    DeviceIp: "The end user's IPv4 or IPv6 address: it counts on RATE_LIMIT_IP.",
    RateLimits:
      'JSON: {"<unique name>": "<value>"}, each value counted on the service\'s rate limit of that name (a full bucket is 429 / 20429; an unknown name is 60200).',
    ChannelConfiguration: 'JSON, email: {"from": "<address>", "from_name": "<up to 100 characters>"}; any other key is 60200.',
    RiskCheck:
      "enable (default) or disable, else 60200. Changes nothing: vericode's protection applies to every start (SAFE_NUMBERS exempts a number).",
    Tags: "JSON object of at most 10 pairs, else 60200. Neither stored nor returned.",
    EnableSnaClientToken: `false, or true: ${refused("Silent Network Auth")}`,
    CustomCode: refused("custom codes"),
    CustomMessage: refused("custom messages"),
    SendDigits: refused("SendDigits"),
    Amount: refused("PSD2"),
    Payee: refused("PSD2"),
    TemplateSid: refused("templates"),
    TemplateCustomSubstitutions: refused("templates"),
    Templates: refused("templates"),
    SnaClientToken: refused("Silent Network Auth"),
  },
  { required: ["To", "Channel"], description: "Other parameters are ignored." },
);
const CHECK_FORM = form(
  {
    Code: "4 to 10 digits.",
    To: "The start's To (E.164, or the address), or give VerificationSid instead.",
    VerificationSid: "The verification's VE sid, or give To instead (the sid wins when both are given).",
    Amount: refused("PSD2"),
    Payee: refused("PSD2"),
    SnaClientToken: refused("Silent Network Auth"),
  },
  { required: ["Code"] },
);
const UNIQUE_NAME = "1 to 191 letters, digits, _ . or -, unique in the service (a duplicate is 60200).";
const MAX = `Starts allowed per Interval for one value: 1 to ${BUCKET_MAX.toLocaleString("en")}.`;
const INTERVAL = `Seconds: 1 to ${BUCKET_INTERVAL.toLocaleString("en")} (31 days); one bucket per interval in a rate limit (a duplicate is 60211).`;

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
  const authenticate = credentials === null ? null : basicAuth(credentials);
  await app.register(
    async (v2) => {
      v2.removeAllContentTypeParsers();
      v2.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_request, body, done) =>
        done(null, formParams(body as string)),
      );
      // Any other body is read as no parameters, as Twilio reads it: Twilio's clients send forms. A missing
      // required parameter's 60200 then says the body was not read (explainUnreadBody).
      v2.addContentTypeParser("*", { parseAs: "string" }, (_request, _body, done) => done(null, {}));
      v2.setValidatorCompiler(() => () => true);
      v2.setSerializerCompiler(() => (data) => JSON.stringify(data));
      v2.addHook("onRequest", async (request) => {
        // Off: every path is 404, and says how to turn it on (the routes stay in the OpenAPI document).
        if (authenticate === null) {
          throw notFound(request.url.split("?")[0] ?? "", { reason: "The /v2 API is off: set VERIFY_ACCOUNT_SID and VERIFY_AUTH_TOKEN." });
        }
        authenticate(request.headers.authorization);
      });
      v2.setErrorHandler((error, request, reply) => {
        if (!(error instanceof VerifyError) || error.status >= 500) request.log.error({ err: error }, "verify api error");
        return sendTwilioError(reply, explainUnreadBody(error, request.headers["content-type"]));
      });
      v2.setNotFoundHandler((request, reply) => sendTwilioError(reply, notFound(request.url.split("?")[0] ?? "")));
      // A known path asked with another method: 405 / 20004 with Allow, as Twilio answers it (after auth).
      const refuseOtherMethods = methodNotAllowed(v2, (request, reply, allow) =>
        sendTwilioError(
          reply,
          new VerifyError(20004, { details: { reason: `${path(request)} does not take ${request.method}: use ${allow}.` } }),
        ),
      );
      await v2.register(serviceRoutes, ctx);
      await v2.register(verificationRoutes, ctx);
      await v2.register(rateLimitRoutes, ctx);
      refuseOtherMethods();
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
    doc("Create a Verify service", { body: serviceForm(["FriendlyName"]), success: [201, ServiceBody] }),
    async (request, reply) => {
      const service = newService(newSid("VA"), body(request), ctx.now());
      await guard(ctx.verify.store.createService(service));
      return reply.code(201).send(renderService(ctx.wire, service));
    },
  );
  app.get("/Services", doc("List Verify services", { query: PAGE_QUERY, success: [200, ServiceListBody] }), async (request) => {
    const at = pageOf(query(request));
    const page = await guard(ctx.verify.store.listServices({ offset: at.page * at.size, size: at.size }));
    const items = page.items.map((service) => renderService(ctx.wire, service));
    return listPage(`${ctx.wire.base}/Services`, "services", at, items, page.more);
  });
  app.get("/Services/:Sid", doc("Fetch a Verify service", { success: [200, ServiceBody] }), async (request: Req) =>
    renderService(ctx.wire, await serviceOf(ctx, request, "Sid")),
  );
  app.post(
    "/Services/:Sid",
    doc("Update a Verify service", { body: serviceForm([]), success: [200, ServiceBody] }),
    async (request: Req) => {
      const service = serviceWith(body(request), await serviceOf(ctx, request, "Sid"));
      const updated = { ...service, updatedAt: ctx.now() };
      if (!(await ctx.verify.updateService(updated))) throw notFound(path(request));
      return renderService(ctx.wire, updated);
    },
  );
  const deleteService = doc("Delete a Verify service", {
    description: "Its pending verifications end as canceled; its rate limits and their buckets go.",
    success: [204, NoBody],
  });
  app.delete("/Services/:Sid", deleteService, async (request: Req, reply) => {
    const service = await serviceOf(ctx, request, "Sid");
    if (!(await ctx.verify.deleteService(service.sid))) throw notFound(path(request));
    return reply.code(204).send();
  });
};

const verificationRoutes: FastifyPluginAsync<Ctx> = async (app: FastifyInstance, ctx) => {
  app.post(
    "/Services/:ServiceSid/Verifications",
    doc("Start a verification", {
      description: "A second start for the same To while one is pending sends the same code again (at most 5 sends: 60203).",
      body: START_FORM,
      success: [201, VerificationBody],
    }),
    async (request: Req, reply) => {
      const service = await serviceOf(ctx, request);
      const view = await ctx.verify.start(service, startRequest(body(request)));
      return reply.code(201).send(renderVerification(ctx.wire, view));
    },
  );
  const fetchVerification = doc("Fetch a pending verification", {
    description: "404 / 20404 once it is approved, expired, canceled or out of checks (details say which).",
    success: [200, VerificationBody],
  });
  app.get("/Services/:ServiceSid/Verifications/:Sid", fetchVerification, async (request: Req) => {
    const service = await serviceOf(ctx, request);
    return renderVerification(ctx.wire, await ctx.verify.fetch(service, request.params.Sid ?? "", path(request)));
  });
  app.post(
    "/Services/:ServiceSid/Verifications/:Sid",
    doc("Cancel or approve a pending verification", {
      body: form({ Status: "canceled or approved." }, { required: ["Status"] }),
      success: [200, VerificationBody],
    }),
    async (request: Req) => {
      const service = await serviceOf(ctx, request);
      const status = param(body(request), "Status");
      if (status === undefined) throw missingParameter("Status", "Status is required: canceled or approved.");
      if (status !== "canceled" && status !== "approved") throw invalidParameter("Status", "Status is canceled or approved.");
      return renderVerification(ctx.wire, await ctx.verify.end(service, request.params.Sid ?? "", status, path(request)));
    },
  );
  app.post(
    "/Services/:ServiceSid/VerificationCheck",
    doc("Check a code", {
      description: "200: approved, or pending with valid false for a wrong code; 60202 after 5 checks; 404 once it is over.",
      body: CHECK_FORM,
      success: [200, CheckBody],
    }),
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
  const createLimit = doc("Create a rate limit", {
    body: form({ UniqueName: UNIQUE_NAME, Description: "Free text, stored and shown." }, { required: ["UniqueName"] }),
    success: [201, RateLimitBody],
  });
  app.post("/Services/:ServiceSid/RateLimits", createLimit, async (request: Req, reply) => {
    const service = await serviceOf(ctx, request);
    const params = body(request);
    const uniqueName = param(params, "UniqueName");
    if (uniqueName === undefined) throw missingParameter("UniqueName", "UniqueName is required: 1 to 191 letters, digits, _ . or -.");
    if (!/^[A-Za-z0-9_.-]{1,191}$/.test(uniqueName)) {
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
  const listLimits = doc("List rate limits", { query: PAGE_QUERY, success: [200, RateLimitListBody] });
  app.get("/Services/:ServiceSid/RateLimits", listLimits, async (request: Req) => {
    const service = await serviceOf(ctx, request);
    const at = pageOf(query(request));
    const page = await guard(ctx.verify.store.listRateLimits(service.sid, { offset: at.page * at.size, size: at.size }));
    const items = page.items.map((limit) => renderRateLimit(ctx.wire, limit));
    return listPage(`${ctx.wire.base}/Services/${service.sid}/RateLimits`, "rate_limits", at, items, page.more);
  });
  app.get("/Services/:ServiceSid/RateLimits/:Sid", doc("Fetch a rate limit", { success: [200, RateLimitBody] }), async (request: Req) =>
    renderRateLimit(ctx.wire, await limitOf(request)),
  );
  const updateLimit = doc("Update a rate limit", {
    body: form({ Description: "Free text, stored and shown. Omitted: unchanged." }, { description: "The unique name does not change." }),
    success: [200, RateLimitBody],
  });
  app.post("/Services/:ServiceSid/RateLimits/:Sid", updateLimit, async (request: Req) => {
    const limit = await limitOf(request);
    const updated = await guard(
      ctx.verify.store.updateRateLimit(limit.serviceSid, limit.sid, param(body(request), "Description") ?? limit.description, ctx.now()),
    );
    if (updated === null) throw notFound(path(request));
    return renderRateLimit(ctx.wire, updated);
  });
  const deleteLimit = doc("Delete a rate limit and its buckets", { success: [204, NoBody] });
  app.delete("/Services/:ServiceSid/RateLimits/:Sid", deleteLimit, async (request: Req, reply) => {
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
    doc("Create a bucket: at most Max starts per Interval seconds for one value of the rate limit", {
      body: form({ Max: MAX, Interval: INTERVAL }, { required: ["Max", "Interval"] }),
      success: [201, BucketBody],
    }),
    async (request: Req, reply) => {
      const limit = await ctx.limitOf(request);
      const params = body(request);
      const max = integerParam(params, "Max", 1, BUCKET_MAX);
      const interval = integerParam(params, "Interval", 1, BUCKET_INTERVAL);
      if (max === undefined) throw missingParameter("Max");
      if (interval === undefined) throw missingParameter("Interval", "Interval is required (seconds).");
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
  app.get(base, doc("List buckets", { query: PAGE_QUERY, success: [200, BucketListBody] }), async (request: Req) => {
    const limit = await ctx.limitOf(request);
    const at = pageOf(query(request));
    const page = await guard(ctx.verify.store.listBuckets(limit.sid, { offset: at.page * at.size, size: at.size }));
    const items = page.items.map((bucket) => renderBucket(ctx.wire, bucket));
    return listPage(`${ctx.wire.base}/Services/${limit.serviceSid}/RateLimits/${limit.sid}/Buckets`, "buckets", at, items, page.more);
  });
  const fetchBucket = doc("Fetch a bucket", { success: [200, BucketBody] });
  app.get(`${base}/:Sid`, fetchBucket, async (request: Req) => renderBucket(ctx.wire, await bucketOf(request)));
  const updateBucket = doc("Update a bucket", {
    body: form({ Max: `${MAX} Omitted: unchanged.`, Interval: `${INTERVAL} Omitted: unchanged.` }),
    success: [200, BucketBody],
  });
  app.post(`${base}/:Sid`, updateBucket, async (request: Req) => {
    const bucket = await bucketOf(request);
    const params = body(request);
    const max = integerParam(params, "Max", 1, BUCKET_MAX);
    const interval = integerParam(params, "Interval", 1, BUCKET_INTERVAL);
    const change = { ...(max === undefined ? {} : { max }), ...(interval === undefined ? {} : { interval }) };
    const updated = await guard(ctx.verify.store.updateBucket(bucket.rateLimitSid, bucket.sid, change, ctx.now()));
    if (updated === "duplicate") throw duplicateInterval();
    if (updated === null) throw notFound(path(request));
    return renderBucket(ctx.wire, updated);
  });
  app.delete(`${base}/:Sid`, doc("Delete a bucket", { success: [204, NoBody] }), async (request: Req, reply) => {
    const bucket = await bucketOf(request);
    if (!(await guard(ctx.verify.store.deleteBucket(bucket.rateLimitSid, bucket.sid)))) throw notFound(path(request));
    return reply.code(204).send();
  });
};

function duplicateInterval(): VerifyError {
  return new VerifyError(60211, { details: { reason: "The rate limit has a bucket with this Interval already." } });
}
