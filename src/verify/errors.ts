/**
 * The errors of the /v2 API, as Twilio Verify words them (https://www.twilio.com/docs/errors/<code>): the
 * body the official SDK turns into a RestException is `{code, message, more_info, status}` (never
 * problem+json, which the SDK would raise as another class of exception). `details` is vericode's own
 * explanation in words, which the SDK passes on as `RestException.details`.
 */
export class VerifyError extends Error {
  readonly code: number;
  readonly status: number;
  /** Whole seconds, for Retry-After. */
  readonly retryAfter: number | undefined;
  readonly details: Record<string, unknown> | undefined;
  /** Extra response headers (Twilio-Reached-Rate-Limit). */
  readonly headers: Record<string, string>;

  constructor(
    code: number,
    status: number,
    message: string,
    options: { retryAfter?: number; details?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = "VerifyError";
    this.code = code;
    this.status = status;
    this.retryAfter = options.retryAfter;
    this.details = options.details;
    this.headers = options.headers ?? {};
  }

  get moreInfo(): string {
    return `https://www.twilio.com/docs/errors/${this.code}`;
  }
}

/** 60200: a parameter is missing, malformed or names something vericode does not offer; `why` in words. */
export function invalidParameter(name: string, why: string): VerifyError {
  return new VerifyError(60200, 400, `Invalid parameter: ${name}`, { details: { parameter: name, reason: why } });
}

/** 20404, with Twilio's wording: the path of what was asked for. */
export function notFound(path: string, details?: Record<string, unknown>): VerifyError {
  return new VerifyError(20404, 404, `The requested resource ${path} was not found`, details === undefined ? {} : { details });
}

export function authenticate(): VerifyError {
  return new VerifyError(20003, 401, "Authenticate");
}

/** 20429; without Retry-After when the wait is not known (a spent budget that never renews). */
export function tooManyRequests(retryAfter: number | undefined, reason: string, headers: Record<string, string> = {}): VerifyError {
  return new VerifyError(20429, 429, "Too many requests", {
    ...(retryAfter === undefined ? {} : { retryAfter }),
    details: { reason },
    headers,
  });
}
