import { timingSafeEqual } from "node:crypto";
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import type { FastifyReply } from "fastify";
import { type ChannelName, isChannelName } from "../channels/channel.js";
import { VericodeError } from "../errors.js";
import type { BucketRecord, RateLimitRecord, VerificationRecord, VerifyServiceRecord } from "../store/verify-store.js";
import { VerifyError } from "../verify/errors.js";
import { twilioDate } from "../verify/format.js";
import { settingsOf } from "../verify/settings.js";
import type { VerificationView } from "../verify/verify-service.js";

/**
 * Twilio's wire format for the /v2 API: snake_case JSON, dates without milliseconds, every `url` and
 * `links` value absolute from PUBLIC_BASE_URL, list pages in Twilio's envelope, errors as
 * `{code, message, more_info, status}`.
 */
export interface Wire {
  /** PUBLIC_BASE_URL + "/v2". */
  base: string;
  accountSid: string;
}

/** The credentials the /v2 API takes: the account's sid and auth token, and its API keys (sid → secret). */
export interface BasicCredentials {
  accountSid: string;
  authToken: string;
  apiKeys: ReadonlyMap<string, string>;
}

/** How many accepted Authorization headers basicAuth keeps (an application server sends one or a few). */
const ACCEPTED_KEPT = 64;

/**
 * HTTP Basic with the account's sid and auth token, or one of its API keys (`SK…` and its secret), as
 * Twilio takes them; compared in constant time. Anything else is 401 / 20003. A header once accepted is
 * kept and found again by a hash lookup (a Set's, whose time does not depend on how much of a guess
 * matches), so a busy caller's header is decoded and compared once, not on every request. Only accepted
 * headers are kept, and the credentials are fixed when the service starts.
 */
export function basicAuth(credentials: BasicCredentials): (header: string | undefined) => void {
  const accepted = new Set<string>();
  return (header) => {
    if (header !== undefined && accepted.has(header)) return;
    checkBasic(header, credentials);
    if (accepted.size >= ACCEPTED_KEPT) accepted.clear();
    accepted.add(header);
  };
}

function checkBasic(header: string | undefined, credentials: BasicCredentials): asserts header is string {
  // The scheme's name is case-insensitive (RFC 9110 §11.1).
  const match = /^basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? "");
  const decoded = match?.[1] === undefined ? "" : Buffer.from(match[1], "base64").toString("utf8");
  const at = decoded.indexOf(":");
  const user = decoded.slice(0, Math.max(0, at));
  const secret = decoded.slice(at + 1);
  const expected = user === credentials.accountSid ? credentials.authToken : credentials.apiKeys.get(user);
  if (at <= 0 || !equal(secret, expected ?? "")) throw new VerifyError(20003);
}

function equal(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  if (b.length === 0) return false;
  // Compared even when the lengths differ, so the time says nothing of the expected length.
  return timingSafeEqual(a.length === b.length ? a : b, b) && a.length === b.length;
}

/** Any error of a /v2 route, in Twilio's body (the SDK reads it as a RestException). */
export function sendTwilioError(reply: FastifyReply, error: unknown): FastifyReply {
  const known = asVerifyError(error);
  if (known.retryAfter !== undefined) reply.header("retry-after", String(Math.max(1, Math.ceil(known.retryAfter))));
  if (known.code === 20003) reply.header("www-authenticate", 'Basic realm="Twilio API"');
  for (const [name, value] of Object.entries(known.headers)) reply.header(name, value);
  const body = {
    code: known.code,
    message: known.message,
    more_info: known.moreInfo,
    status: known.status,
    ...(known.details === undefined ? {} : { details: known.details }),
  };
  return reply.code(known.status).type("application/json").serializer(JSON.stringify).send(body);
}

/**
 * A required parameter missing from a body that is not a form: the /v2 API reads form-encoded bodies
 * only, as Twilio's does, so a JSON body reads as no parameters and its parameter may well be in it. The
 * 60200 then says so; any other error, or a form's, is left as it is.
 */
export function explainUnreadBody(error: unknown, contentType: string | undefined): unknown {
  if (!(error instanceof VerifyError) || !error.missing || contentType === undefined) return error;
  const media = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  if (media === "application/x-www-form-urlencoded") return error;
  const reason = `${String(error.details?.reason ?? "")} The /v2 API reads form-encoded bodies (application/x-www-form-urlencoded), as Twilio's does: this request's ${media.slice(0, 100) || "unnamed"} body was read as no parameters.`;
  return new VerifyError(error.code, { message: error.message, details: { ...error.details, reason: reason.trimStart() } });
}

function asVerifyError(error: unknown): VerifyError {
  if (error instanceof VerifyError) return error;
  if (error instanceof VericodeError && error.code === "service_unavailable") {
    return new VerifyError(20503, { retryAfter: error.retryAfter ?? 5, details: { reason: error.message } });
  }
  const status = (error as { statusCode?: number }).statusCode;
  if (status === 413) return new VerifyError(20001, { details: { reason: "The request body is over 16 KiB." } });
  if (status !== undefined && status >= 400 && status < 500) {
    return new VerifyError(20001, { details: { reason: "Send the parameters form-encoded (application/x-www-form-urlencoded)." } });
  }
  return new VerifyError(20500);
}

/*
 * The bodies the /v2 API answers, as TypeBox schemas: the OpenAPI document shows them, and each render
 * function below returns its schema's static type, so the two cannot drift apart. They document only:
 * the /v2 scope's serializer is JSON.stringify, whatever a route's response schema says. Every object
 * is closed (additionalProperties: false), so test/verify/openapi.test.ts fails on a field the server
 * sends and the document lacks, as on a documented field the server leaves out.
 */

const CLOSED = { additionalProperties: false } as const;

/** A bucket's bounds, as the routes check Max and Interval (seconds: up to 31 days). */
export const BUCKET_MAX = 1_000_000;
export const BUCKET_INTERVAL = 86_400 * 31;

function sid(prefix: string, what: string) {
  return Type.String({ pattern: `^${prefix}[0-9a-fA-F]{32}$`, description: `${what}: ${prefix} and 32 hex digits.` });
}

/** One of these strings: `enum` in the document (a union of literals would show as anyOf). */
function oneOf<const T extends readonly string[]>(values: T, options: { description?: string } = {}) {
  return Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...options });
}

function nullable<T extends TSchema>(schema: T) {
  return Type.Union([schema, Type.Null()]);
}

/** Always null: a Twilio field for something vericode does not offer. */
function notOffered(what: string) {
  return Type.Null({ description: `Always null: vericode does not offer ${what}.` });
}

const TwilioDate = Type.String({
  pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z$",
  description: "UTC, without milliseconds.",
  examples: ["2026-11-26T00:37:47Z"],
});

function absoluteUrl(description: string) {
  return Type.String({ pattern: "^https?://", description: `${description}, absolute from PUBLIC_BASE_URL.` });
}

export const ServiceBody = Type.Object(
  {
    sid: sid("VA", "The service"),
    account_sid: sid("AC", "VERIFY_ACCOUNT_SID"),
    friendly_name: Type.String({ description: "Printed in every message." }),
    code_length: Type.Integer({ minimum: 4, maximum: 10 }),
    lookup_enabled: Type.Boolean(),
    psd2_enabled: Type.Boolean({ description: "Always false: vericode does not offer PSD2." }),
    skip_sms_to_landlines: Type.Boolean(),
    dtmf_input_required: Type.Boolean({ description: "Stored and shown; calls do not ask for a key press." }),
    tts_name: nullable(Type.String({ description: "Stored and shown." })),
    do_not_share_warning_enabled: Type.Boolean(),
    custom_code_enabled: Type.Boolean({ description: "Always false: vericode does not offer custom codes." }),
    push: Type.Object(
      {
        include_date: Type.Boolean({ description: "Always false: vericode does not offer Push." }),
        apn_credential_sid: notOffered("Push"),
        fcm_credential_sid: notOffered("Push"),
      },
      CLOSED,
    ),
    totp: Type.Object(
      {
        issuer: notOffered("TOTP"),
        time_step: Type.Integer({ description: "Twilio's default (30); vericode does not offer TOTP." }),
        code_length: Type.Integer({ description: "Twilio's default (6); vericode does not offer TOTP." }),
        skew: Type.Integer({ description: "Twilio's default (1); vericode does not offer TOTP." }),
      },
      CLOSED,
    ),
    whatsapp: Type.Object(
      {
        msg_service_sid: nullable(Type.String({ description: "Stored and shown; WhatsApp goes from TWILIO_WHATSAPP_FROM." })),
        from: nullable(Type.String({ description: "Stored and shown; WhatsApp goes from TWILIO_WHATSAPP_FROM." })),
      },
      CLOSED,
    ),
    passkeys: Type.Object(
      {
        relying_party: Type.Object(
          { id: notOffered("passkeys"), name: notOffered("passkeys"), origins: Type.Array(Type.String(), { maxItems: 0 }) },
          CLOSED,
        ),
        authenticator_attachment: notOffered("passkeys"),
        discoverable_credentials: notOffered("passkeys"),
        user_verification: notOffered("passkeys"),
      },
      CLOSED,
    ),
    default_template_sid: notOffered("templates"),
    verify_event_subscription_enabled: Type.Boolean({ description: "Always false: vericode does not offer Verify events." }),
    date_created: TwilioDate,
    date_updated: TwilioDate,
    url: absoluteUrl("The service"),
    links: Type.Object(
      {
        verification_checks: absoluteUrl("Checks"),
        verifications: absoluteUrl("Starts"),
        rate_limits: absoluteUrl("The service's rate limits"),
        messaging_configurations: absoluteUrl("Named as Twilio's; 404 at vericode"),
        entities: absoluteUrl("Named as Twilio's; 404 at vericode"),
        webhooks: absoluteUrl("Named as Twilio's; 404 at vericode"),
        access_tokens: absoluteUrl("Named as Twilio's; 404 at vericode"),
      },
      CLOSED,
    ),
  },
  { ...CLOSED, description: "A Verify service." },
);

/** How a verification's `channel` reads: Twilio's names (vericode's `voice` is `call`; `auto` started by SMS). */
const VerificationChannel = oneOf(["sms", "call", "whatsapp", "email"]);

/** What a verification and a check's answer share. */
const VERIFICATION_FIELDS = {
  sid: sid("VE", "The verification"),
  service_sid: sid("VA", "Its service"),
  account_sid: sid("AC", "VERIFY_ACCOUNT_SID"),
  to: Type.String({ description: "E.164, or the email address." }),
  channel: VerificationChannel,
  status: oneOf(["pending", "approved", "canceled", "expired", "max_attempts_reached"], {
    description: "pending until it is approved, canceled, or out of checks (max_attempts_reached).",
  }),
  valid: Type.Boolean({ description: "Twilio's legacy field: true when approved." }),
  amount: notOffered("PSD2"),
  payee: notOffered("PSD2"),
  date_created: TwilioDate,
  date_updated: TwilioDate,
};

export const VerificationBody = Type.Object(
  {
    ...VERIFICATION_FIELDS,
    lookup: Type.Object(
      {
        carrier: Type.Optional(
          Type.Object(
            {
              mobile_country_code: Type.Null({ description: "Always null: there is no carrier lookup." }),
              type: Type.String({ description: "The number's type from libphonenumber: mobile, landline, voip, toll_free…" }),
              error_code: Type.Null(),
              mobile_network_code: Type.Null({ description: "Always null: there is no carrier lookup." }),
              name: Type.Null({ description: "Always null: there is no carrier lookup." }),
            },
            CLOSED,
          ),
        ),
      },
      { ...CLOSED, description: "{} unless the service's LookupEnabled is true." },
    ),
    send_code_attempts: Type.Array(
      Type.Object(
        {
          time: TwilioDate,
          channel: oneOf(["SMS", "EMAIL", "call", "whatsapp"], { description: "As Twilio writes them: SMS and EMAIL in capitals." }),
          attempt_sid: sid("VL", "The send"),
        },
        CLOSED,
      ),
      { description: "One per send, at most 5." },
    ),
    sna: notOffered("Silent Network Auth"),
    url: absoluteUrl("The verification"),
  },
  { ...CLOSED, description: "A verification; the code is never in it." },
);

export const CheckBody = Type.Object(
  {
    ...VERIFICATION_FIELDS,
    sna_attempts_error_codes: Type.Array(Type.Integer(), { maxItems: 0, description: "Always empty." }),
  },
  { ...CLOSED, description: "A check's answer: its sid is the verification's. A wrong code is pending, valid false." },
);

export const RateLimitBody = Type.Object(
  {
    sid: sid("RK", "The rate limit"),
    service_sid: sid("VA", "Its service"),
    account_sid: sid("AC", "VERIFY_ACCOUNT_SID"),
    unique_name: Type.String({ description: "The name a start's RateLimits gives a value for." }),
    description: nullable(Type.String()),
    date_created: TwilioDate,
    date_updated: TwilioDate,
    url: absoluteUrl("The rate limit"),
    links: Type.Object({ buckets: absoluteUrl("Its buckets") }, CLOSED),
  },
  { ...CLOSED, description: "A service's rate limit." },
);

export const BucketBody = Type.Object(
  {
    sid: sid("BL", "The bucket"),
    rate_limit_sid: sid("RK", "Its rate limit"),
    service_sid: sid("VA", "Its service"),
    account_sid: sid("AC", "VERIFY_ACCOUNT_SID"),
    max: Type.Integer({ minimum: 1, maximum: BUCKET_MAX, description: "Starts allowed per interval, for one value." }),
    interval: Type.Integer({ minimum: 1, maximum: BUCKET_INTERVAL, description: "Seconds." }),
    date_created: TwilioDate,
    date_updated: TwilioDate,
    url: absoluteUrl("The bucket"),
  },
  { ...CLOSED, description: "A rate limit's bucket: at most max starts per interval seconds for one value." },
);

const PageMeta = Type.Object(
  {
    page: Type.Integer({ minimum: 0 }),
    page_size: Type.Integer({ minimum: 1, maximum: 1000 }),
    first_page_url: absoluteUrl("Page 0"),
    previous_page_url: nullable(absoluteUrl("The page before; null on page 0")),
    url: absoluteUrl("This page"),
    next_page_url: nullable(absoluteUrl("The next page; null on the last")),
    key: Type.String({ description: "The name of the list's items field." }),
  },
  CLOSED,
);

export const ServiceListBody = Type.Object(
  { services: Type.Array(ServiceBody), meta: PageMeta },
  { ...CLOSED, description: "A page of services, in Twilio's envelope." },
);
export const RateLimitListBody = Type.Object(
  { rate_limits: Type.Array(RateLimitBody), meta: PageMeta },
  { ...CLOSED, description: "A page of the service's rate limits, in Twilio's envelope." },
);
export const BucketListBody = Type.Object(
  { buckets: Type.Array(BucketBody), meta: PageMeta },
  { ...CLOSED, description: "A page of the rate limit's buckets, in Twilio's envelope." },
);

export function renderService(wire: Wire, service: VerifyServiceRecord): Static<typeof ServiceBody> {
  const url = `${wire.base}/Services/${service.sid}`;
  const s = settingsOf(service);
  return {
    sid: service.sid,
    account_sid: wire.accountSid,
    friendly_name: service.friendlyName,
    code_length: service.codeLength,
    lookup_enabled: s.lookupEnabled,
    psd2_enabled: false,
    skip_sms_to_landlines: s.skipSmsToLandlines,
    dtmf_input_required: s.dtmfInputRequired,
    tts_name: s.ttsName,
    do_not_share_warning_enabled: s.doNotShareWarningEnabled,
    custom_code_enabled: false,
    push: { include_date: false, apn_credential_sid: null, fcm_credential_sid: null },
    totp: { issuer: null, time_step: 30, code_length: 6, skew: 1 },
    whatsapp: { msg_service_sid: s.whatsappMsgServiceSid, from: s.whatsappFrom },
    passkeys: {
      relying_party: { id: null, name: null, origins: [] },
      authenticator_attachment: null,
      discoverable_credentials: null,
      user_verification: null,
    },
    default_template_sid: null,
    verify_event_subscription_enabled: false,
    date_created: twilioDate(service.createdAt),
    date_updated: twilioDate(service.updatedAt),
    url,
    links: {
      verification_checks: `${url}/VerificationCheck`,
      verifications: `${url}/Verifications`,
      rate_limits: `${url}/RateLimits`,
      messaging_configurations: `${url}/MessagingConfigurations`,
      entities: `${url}/Entities`,
      webhooks: `${url}/Webhooks`,
      access_tokens: `${url}/AccessTokens`,
    },
  };
}

type Attempt = Static<typeof VerificationBody>["send_code_attempts"][number];

/** Twilio writes SMS and EMAIL in capitals in send_code_attempts, the others in lower case. */
const ATTEMPT_CHANNEL: Readonly<Record<ChannelName, Attempt["channel"]>> = {
  sms: "SMS",
  email: "EMAIL",
  voice: "call",
  whatsapp: "whatsapp",
};
/** vericode's channel names back to Twilio's. */
const TWILIO_CHANNEL: Readonly<Record<ChannelName, Static<typeof VerificationChannel>>> = {
  sms: "sms",
  voice: "call",
  whatsapp: "whatsapp",
  email: "email",
};

/** A stored channel name: one of vericode's (a start stores only those), or `test` for a test number's attempt. */
function channelOf(name: string): ChannelName {
  if (!isChannelName(name)) throw new TypeError(`A verification names an unknown channel: ${JSON.stringify(name)}.`);
  return name;
}

/** A verification as Twilio answers it; its first eleven fields are a check's too (renderCheck). */
export function renderVerification(wire: Wire, view: VerificationView): Static<typeof VerificationBody> {
  const { verification: v, attempts, lookup } = view;
  // Each body written out whole: an object literal that starts with a spread costs about a microsecond a
  // field on the hot path (docs/benchmarks.md, "Memory").
  return {
    sid: v.sid,
    service_sid: v.serviceSid,
    account_sid: wire.accountSid,
    to: v.to,
    channel: TWILIO_CHANNEL[channelOf(v.channel)],
    status: v.status,
    valid: v.status === "approved",
    amount: null,
    payee: null,
    date_created: twilioDate(v.createdAt),
    date_updated: twilioDate(v.updatedAt),
    lookup:
      lookup === null
        ? {}
        : { carrier: { mobile_country_code: null, type: lookup.type, error_code: null, mobile_network_code: null, name: null } },
    send_code_attempts: attempts.map((a) => {
      // A test number's attempt (channel `test`: never sent) shows the channel the verification asked for.
      const channel = channelOf(a.channel === "test" ? v.channel : a.channel);
      return { time: twilioDate(a.createdAt), channel: ATTEMPT_CHANNEL[channel], attempt_sid: a.sid };
    }),
    sna: null,
    url: `${wire.base}/Services/${v.serviceSid}/Verifications/${v.sid}`,
  };
}

/** A check's answer: a verification's first eleven fields (renderVerification), then `sna_attempts_error_codes`. */
export function renderCheck(wire: Wire, v: VerificationRecord): Static<typeof CheckBody> {
  return {
    sid: v.sid,
    service_sid: v.serviceSid,
    account_sid: wire.accountSid,
    to: v.to,
    channel: TWILIO_CHANNEL[channelOf(v.channel)],
    status: v.status,
    valid: v.status === "approved",
    amount: null,
    payee: null,
    date_created: twilioDate(v.createdAt),
    date_updated: twilioDate(v.updatedAt),
    sna_attempts_error_codes: [],
  };
}

export function renderRateLimit(wire: Wire, limit: RateLimitRecord): Static<typeof RateLimitBody> {
  const url = `${wire.base}/Services/${limit.serviceSid}/RateLimits/${limit.sid}`;
  return {
    sid: limit.sid,
    service_sid: limit.serviceSid,
    account_sid: wire.accountSid,
    unique_name: limit.uniqueName,
    description: limit.description,
    date_created: twilioDate(limit.createdAt),
    date_updated: twilioDate(limit.updatedAt),
    url,
    links: { buckets: `${url}/Buckets` },
  };
}

export function renderBucket(wire: Wire, bucket: BucketRecord): Static<typeof BucketBody> {
  return {
    sid: bucket.sid,
    rate_limit_sid: bucket.rateLimitSid,
    service_sid: bucket.serviceSid,
    account_sid: wire.accountSid,
    max: bucket.max,
    interval: bucket.interval,
    date_created: twilioDate(bucket.createdAt),
    date_updated: twilioDate(bucket.updatedAt),
    url: `${wire.base}/Services/${bucket.serviceSid}/RateLimits/${bucket.rateLimitSid}/Buckets/${bucket.sid}`,
  };
}

/** A list answer in Twilio's envelope: the items under `key`, and `meta` with absolute page URLs. */
export function listPage<K extends string, T>(
  url: string,
  key: K,
  at: { page: number; size: number },
  items: T[],
  more: boolean,
): { [P in K]: T[] } & { meta: Static<typeof PageMeta> } {
  const pageUrl = (page: number) => `${url}?PageSize=${at.size}&Page=${page}`;
  const meta = {
    page: at.page,
    page_size: at.size,
    first_page_url: pageUrl(0),
    previous_page_url: at.page > 0 ? pageUrl(at.page - 1) : null,
    url: pageUrl(at.page),
    next_page_url: more ? pageUrl(at.page + 1) : null,
    key,
  };
  // A computed key widens to `string` in TypeScript: the cast names the one key it is.
  return { [key]: items, meta } as { [P in K]: T[] } & { meta: Static<typeof PageMeta> };
}
