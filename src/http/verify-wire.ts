import { timingSafeEqual } from "node:crypto";
import type { FastifyReply } from "fastify";
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

/**
 * HTTP Basic with the account's sid and auth token, or one of its API keys (`SK…` and its secret), as
 * Twilio takes them; compared in constant time. Anything else is 401 / 20003.
 */
export function checkBasic(
  header: string | undefined,
  credentials: { accountSid: string; authToken: string; apiKeys: ReadonlyMap<string, string> },
): void {
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

export function renderService(wire: Wire, service: VerifyServiceRecord): Record<string, unknown> {
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

/** Twilio writes SMS and EMAIL in capitals in send_code_attempts, the others in lower case. */
const ATTEMPT_CHANNEL: Readonly<Record<string, string>> = { sms: "SMS", email: "EMAIL", voice: "call", whatsapp: "whatsapp" };
/** vericode's channel names back to Twilio's. */
const TWILIO_CHANNEL: Readonly<Record<string, string>> = { voice: "call" };

/** What a verification and a check's answer share. */
function verificationFields(wire: Wire, v: VerificationRecord): Record<string, unknown> {
  return {
    sid: v.sid,
    service_sid: v.serviceSid,
    account_sid: wire.accountSid,
    to: v.to,
    channel: TWILIO_CHANNEL[v.channel] ?? v.channel,
    status: v.status,
    valid: v.status === "approved",
    amount: null,
    payee: null,
    date_created: twilioDate(v.createdAt),
    date_updated: twilioDate(v.updatedAt),
  };
}

export function renderVerification(wire: Wire, view: VerificationView): Record<string, unknown> {
  const { verification: v, attempts, lookup } = view;
  return {
    ...verificationFields(wire, v),
    lookup:
      lookup === null
        ? {}
        : { carrier: { mobile_country_code: null, type: lookup.type, error_code: null, mobile_network_code: null, name: null } },
    send_code_attempts: attempts.map((a) => {
      // A test number's attempt (channel `test`: never sent) shows the channel the verification asked for.
      const channel = a.channel === "test" ? v.channel : a.channel;
      return { time: twilioDate(a.createdAt), channel: ATTEMPT_CHANNEL[channel] ?? channel, attempt_sid: a.sid };
    }),
    sna: null,
    url: `${wire.base}/Services/${v.serviceSid}/Verifications/${v.sid}`,
  };
}

export function renderCheck(wire: Wire, v: VerificationRecord): Record<string, unknown> {
  return { ...verificationFields(wire, v), sna_attempts_error_codes: [] };
}

export function renderRateLimit(wire: Wire, limit: RateLimitRecord): Record<string, unknown> {
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

export function renderBucket(wire: Wire, bucket: BucketRecord): Record<string, unknown> {
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
export function listPage(
  url: string,
  key: string,
  at: { page: number; size: number },
  items: Record<string, unknown>[],
  more: boolean,
): Record<string, unknown> {
  const pageUrl = (page: number) => `${url}?PageSize=${at.size}&Page=${page}`;
  return {
    [key]: items,
    meta: {
      page: at.page,
      page_size: at.size,
      first_page_url: pageUrl(0),
      previous_page_url: at.page > 0 ? pageUrl(at.page - 1) : null,
      url: pageUrl(at.page),
      next_page_url: more ? pageUrl(at.page + 1) : null,
      key,
    },
  };
}
