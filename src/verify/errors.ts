import type { DeliveryOutcome } from "../channels/channel.js";
import type { Refusal } from "../limits/protection.js";
import type { PhoneInfo } from "../phone.js";

/**
 * Every Twilio error code the /v2 API answers, with its HTTP status and Twilio's message
 * (https://www.twilio.com/docs/errors/<code>): one table, which docs/twilio-verify.md lists and a test
 * keeps in step with it.
 */
export const TWILIO_ERRORS = {
  20001: { status: 400, message: "Bad request" },
  20003: { status: 401, message: "Authenticate" },
  20004: { status: 405, message: "Method not allowed" },
  20404: { status: 404, message: "The requested resource was not found" },
  20429: { status: 429, message: "Too many requests" },
  20500: { status: 500, message: "Internal Server Error" },
  20503: { status: 503, message: "Service unavailable" },
  60200: { status: 400, message: "Invalid parameter" },
  60202: { status: 429, message: "Max check attempts reached" },
  60203: { status: 429, message: "Max send attempts reached" },
  60205: { status: 403, message: "SMS is not supported by landline phone number" },
  60211: { status: 400, message: "Duplicate bucket interval" },
  60212: { status: 429, message: "Too many concurrent requests for phone number" },
  60410: { status: 403, message: "Verification delivery attempt blocked" },
  60605: { status: 403, message: "Verification delivery attempt blocked" },
} as const satisfies Record<number, { status: number; message: string }>;

export type TwilioErrorCode = keyof typeof TWILIO_ERRORS;

interface ErrorOptions {
  /** Twilio's message when it names something (`Invalid parameter: To`); else the table's. */
  message?: string;
  /** Whole seconds, for Retry-After. */
  retryAfter?: number | undefined;
  /** vericode's explanation in words, which the SDK passes on as `RestException.details`. */
  details?: Record<string, unknown>;
  /** Extra response headers (Twilio-Reached-Rate-Limit). */
  headers?: Record<string, string>;
  /** A required parameter was not given (60200): the answer may add why the body was not read. */
  missing?: boolean;
}

/**
 * An error of the /v2 API, answered as Twilio's body `{code, message, more_info, status}` (never
 * problem+json, which the official SDK would raise as another class of exception).
 */
export class VerifyError extends Error {
  readonly code: TwilioErrorCode;
  readonly status: number;
  readonly retryAfter: number | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string>;
  readonly missing: boolean;

  constructor(code: TwilioErrorCode, options: ErrorOptions = {}) {
    super(options.message ?? TWILIO_ERRORS[code].message);
    this.name = "VerifyError";
    this.code = code;
    this.status = TWILIO_ERRORS[code].status;
    this.retryAfter = options.retryAfter;
    this.details = options.details;
    this.headers = options.headers ?? {};
    this.missing = options.missing ?? false;
  }

  get moreInfo(): string {
    return `https://www.twilio.com/docs/errors/${this.code}`;
  }
}

/** 60200: a parameter is missing, malformed or names something vericode does not offer; `why` in words. */
export function invalidParameter(name: string, why: string): VerifyError {
  return new VerifyError(60200, { message: `Invalid parameter: ${name}`, details: { parameter: name, reason: why } });
}

/** 60200 for a required parameter that was not given; `why` in words (by default, that it is required). */
export function missingParameter(name: string, why = `${name} is required.`): VerifyError {
  return new VerifyError(60200, { message: `Invalid parameter: ${name}`, details: { parameter: name, reason: why }, missing: true });
}

/** 20404, with Twilio's wording: the path of what was asked for. */
export function notFound(path: string, details?: Record<string, unknown>): VerifyError {
  return new VerifyError(20404, { message: `The requested resource ${path} was not found`, ...(details === undefined ? {} : { details }) });
}

/** 20429; without Retry-After when the wait is not known (a spent budget that never renews). */
export function tooManyRequests(retryAfter: number | undefined, reason: string, headers: Record<string, string> = {}): VerifyError {
  return new VerifyError(20429, { retryAfter, details: { reason }, headers });
}

/** A send the provider refused at once, in Twilio's code. The verification stays pending. */
export function deliveryError(outcome: Extract<DeliveryOutcome, { ok: false }>): VerifyError {
  if (outcome.kind === "invalid_number") return invalidParameter("To", "The provider says this is not a valid phone number.");
  if (outcome.kind === "rejected") {
    return new VerifyError(60410, {
      details: { reason: "The provider cannot deliver to this number (a landline, opted out, or a blocked region)." },
    });
  }
  return new VerifyError(20503, {
    retryAfter: 5,
    details: { reason: "The messaging provider failed to send the code. Try again shortly." },
  });
}

/**
 * A full bucket of a service's own rate limit, in words: which limit (its sid, and its unique name when
 * known), what its buckets allow for one value, and when to retry.
 * `The service's rate limit RK… ("end_user_ip") allows 2 starts per 60 seconds for one value; retry after 42 seconds.`
 */
export function serviceLimitReason(
  sid: string,
  uniqueName: string | null,
  buckets: readonly { limit: number; windowMs: number }[],
  retryAfter: number | undefined,
): string {
  const name = uniqueName === null ? "" : ` (${JSON.stringify(uniqueName)})`;
  const allows = [...buckets]
    .sort((a, b) => a.windowMs - b.windowMs)
    .map((bucket) => `${bucket.limit} ${bucket.limit === 1 ? "start" : "starts"} per ${seconds(bucket.windowMs / 1000)}`);
  const what = allows.length === 0 ? "is full for this value" : `allows ${allows.join(" and ")} for one value`;
  const retry = retryAfter === undefined ? "" : `; retry after ${seconds(retryAfter)}`;
  return `The service's rate limit ${sid}${name} ${what}${retry}.`;
}

function seconds(n: number): string {
  return `${n.toLocaleString("en")} ${n === 1 ? "second" : "seconds"}`;
}

/**
 * vericode's refusals (docs/protection.md) in Twilio's codes: per number 60212, country 60605, a landline
 * 60205, a blocked range, another refused number type or the conversion breaker 60410, anything else
 * (a limit, the budget, a service's own rate limit) 20429. A service's own limit is named: its sid in
 * Twilio-Reached-Rate-Limit, and `reason` in the details.
 */
export function refusalError(refusal: Refusal, serviceLimit: { sid: string; reason: string } | null, phone: PhoneInfo | null): VerifyError {
  const details = { reason: refusal.message, rule: refusal.rule };
  const retryAfter = refusal.retryAfter;
  switch (refusal.rule) {
    case "number":
      return new VerifyError(60212, { retryAfter, details });
    case "country":
      return new VerifyError(60605, { details });
    case "number_type":
      // Twilio's 60205 is a landline's; the other refused types (premium rate, pager…) are blocked destinations.
      return new VerifyError(phone?.type === "FIXED_LINE" ? 60205 : 60410, { details });
    case "prefix_blocked":
    case "conversion_breaker":
      return new VerifyError(60410, { retryAfter, details });
    default:
      if (serviceLimit === null) return tooManyRequests(retryAfter, refusal.message);
      return tooManyRequests(retryAfter, serviceLimit.reason, { "twilio-reached-rate-limit": serviceLimit.sid });
  }
}
