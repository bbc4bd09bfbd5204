import type { FieldErrorCode } from "./field-errors.js";

/**
 * The error catalog: every stable error code vericode answers, with its HTTP status and title.
 * Append-only: a code, once published, keeps its meaning and status. `test/errors.test.ts` pins this
 * table against the OpenAPI document and `docs/errors.md`.
 */
export const ERROR_CATALOG = {
  validation_error: { status: 400, title: "Invalid request" },
  invalid_phone_number: { status: 400, title: "Invalid phone number" },
  unauthorized: { status: 401, title: "Unauthorized" },
  otp_invalid: { status: 400, title: "Invalid code" },
  otp_expired: { status: 400, title: "Code expired" },
  otp_attempts_exceeded: { status: 400, title: "Too many attempts" },
  otp_not_found: { status: 400, title: "No pending code" },
  rate_limited: { status: 429, title: "Too many requests" },
  destination_not_allowed: { status: 422, title: "Destination not allowed" },
  provider_rejected: { status: 422, title: "Recipient refused by the provider" },
  provider_unavailable: { status: 503, title: "Messaging provider unavailable" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  payload_too_large: { status: 413, title: "Payload too large" },
  internal_error: { status: 500, title: "Internal error" },
  not_found: { status: 404, title: "Not found" },
  service_unavailable: { status: 503, title: "Service unavailable" },
  budget_exceeded: { status: 503, title: "SMS budget spent" },
  forbidden: { status: 403, title: "Forbidden" },
  channel_unavailable: { status: 422, title: "Channel not available" },
  invalid_email: { status: 400, title: "Invalid email address" },
  phone_verification_required: { status: 403, title: "Phone verification required" },
  idempotency_key_reused: { status: 422, title: "Idempotency key reused" },
  idempotency_key_in_use: { status: 409, title: "Idempotency key in use" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export const ERROR_CODES = Object.keys(ERROR_CATALOG) as ErrorCode[];

/** One invalid field of a validation_error: `code` for programs (src/field-errors.ts lists them), `message` for people. */
export interface FieldError {
  field: string;
  code: FieldErrorCode;
  message: string;
}

export interface VericodeErrorOptions {
  /** Overrides the catalog status where the code allows several (provider_unavailable: 502, 503, 504). */
  status?: number;
  /** Seconds the client should wait before trying again; becomes the Retry-After header. */
  retryAfter?: number;
  /** Extra members of the problem document (attempts_remaining, provider_code, errors…). */
  extra?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * An expected failure with a stable code. The HTTP layer turns it into a problem+json answer; the CLI
 * into a one-line message and a non-zero exit.
 */
export class VericodeError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryAfter: number | undefined;
  readonly extra: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: VericodeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "VericodeError";
    this.code = code;
    this.status = options.status ?? ERROR_CATALOG[code].status;
    this.retryAfter = options.retryAfter;
    this.extra = options.extra ?? {};
  }
}

/** Raised when configuration is invalid: one readable line per problem. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * A guard for calls to a dependency the answer cannot do without (the database, the rate limiter): any
 * failure of it that is not already a VericodeError becomes `503 service_unavailable` with Retry-After,
 * never a 500. Fail closed: nothing is sent or granted while a dependency is down.
 *
 * ```ts
 * const guard = failClosed("database");
 * const user = await guard(store.findUserById(id));
 * ```
 */
export function failClosed(what: string): <T>(work: Promise<T>) => Promise<T> {
  return async <T>(work: Promise<T>): Promise<T> => {
    try {
      return await work;
    } catch (error) {
      if (error instanceof VericodeError) throw error;
      throw new VericodeError("service_unavailable", `The service cannot reach its ${what}. Try again shortly.`, {
        retryAfter: 5,
        cause: error,
      });
    }
  };
}
