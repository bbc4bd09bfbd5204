/**
 * `vericode/client`: a small typed client of vericode's HTTP API for any frontend (browser, React
 * Native, Node 18+). It uses only `fetch`, keeps the tokens it is given, refreshes the access token once
 * when it has expired, and turns every problem+json answer into a `VericodeApiError` with the stable code.
 *
 * ```ts
 * import { createClient, describeError } from "vericode/client";
 * const api = createClient({ baseUrl: "https://auth.example.com" });
 * await api.register({ username: "ana", password: "correct horse battery" });
 * await api.sendOtp({ phone_number: "+50688887777", purpose: "registration" });
 * try { await api.verifyOtp({ phone_number: "+50688887777", otp_code: code, purpose: "registration" }); }
 * catch (error) { show(describeError(error)); }
 * ```
 *
 * This module must stay free of Node's modules: it is bundled into browser pages as it is.
 */

import type { Counts, SummaryAnswer, Timeseries } from "../analytics/schema.js";

export type Purpose = "registration" | "login" | "password_reset";
export type ChannelName = "sms" | "whatsapp" | "voice" | "email";

export interface User {
  id: string;
  username: string | null;
  email: string | null;
  phone_number: string | null;
  phone_verified: boolean;
}

export interface Tokens {
  access: string;
  refresh: string;
}

export interface Registration {
  username?: string;
  email?: string;
  password: string;
  phone_number?: string;
}

export interface Credentials {
  username?: string;
  email?: string;
  password: string;
}

export interface SendOtpRequest {
  /** E.164; for the email channel give `email` instead. */
  phone_number?: string;
  email?: string;
  purpose: Purpose;
  channel?: ChannelName;
  /** BCP 47 tag (`es-CR`) choosing the message's language. */
  locale?: string;
}

export interface SendOtpAnswer {
  success: true;
  id: string;
  message: string;
  expires_at: string;
  resend_after: string;
}

export interface VerifyOtpRequest {
  phone_number?: string;
  email?: string;
  otp_code: string;
  purpose: Purpose;
}

export interface VerifyOtpAnswer {
  success: true;
  message: string;
  verified_at: string;
}

export interface OtpRecord {
  id: string;
  phone_number: string;
  purpose: string;
  channel: string;
  status: string;
  delivery_status: string | null;
  provider_message_id: string | null;
  fallback_from: string | null;
  provider_error_code: string | null;
  created_at: string;
  expires_at: string;
  verified_at: string | null;
}

export interface FlowStarted {
  success: true;
  message: string;
}

/** A report's range and filters (`since` such as 7d, or `from`/`to` as ISO 8601). */
export interface ReportParams {
  since?: string;
  from?: string;
  to?: string;
  group_by?: "day" | "hour";
  purpose?: Purpose;
  channel?: ChannelName;
  country?: string;
}

/**
 * The reports' answers: their types come from the schemas the server validates and documents them with
 * (analytics/schema.ts). A type-only import: nothing of it is in the built client.
 */
export type ReportCounts = Counts;
export type ReportSummary = SummaryAnswer;
export type ReportTimeseries = Timeseries;

/** Every code the API answers (docs/errors.md); new ones may be added, so treat others as generic. */
export type ErrorCode =
  | "validation_error"
  | "invalid_phone_number"
  | "unauthorized"
  | "otp_invalid"
  | "otp_expired"
  | "otp_attempts_exceeded"
  | "otp_not_found"
  | "rate_limited"
  | "destination_not_allowed"
  | "provider_rejected"
  | "provider_unavailable"
  | "unsupported_media_type"
  | "payload_too_large"
  | "internal_error"
  | "not_found"
  | "service_unavailable"
  | "budget_exceeded"
  | "forbidden"
  | "channel_unavailable"
  | "invalid_email"
  | "phone_verification_required"
  | "idempotency_key_reused"
  | "idempotency_key_in_use"
  | "method_not_allowed"
  | "network_error";

/** The problem+json document of a failed request (RFC 9457, with vericode's members). */
export interface Problem {
  type?: string;
  title?: string;
  status: number;
  detail?: string;
  code: string;
  success?: false;
  message: string;
  request_id?: string;
  attempts_remaining?: number;
  provider_code?: string;
  rule?: string;
  errors?: FieldError[];
  [member: string]: unknown;
}

/**
 * One invalid field of a validation_error (or invalid_phone_number): `code` for programs (required,
 * too_short, too_long, invalid_format, not_allowed_value, unknown_field, invalid_type, conflicting_fields,
 * out_of_range, already_registered; docs/errors.md), `message` to show beside the field.
 */
export interface FieldError {
  field: string;
  code?: string;
  message: string;
}

/** A request that failed: the API's problem, or `network_error` (status 0) when no answer came. */
export class VericodeApiError extends Error {
  readonly code: ErrorCode | (string & {});
  readonly status: number;
  readonly problem: Problem;
  /** Seconds from the Retry-After header, when the answer had one. */
  readonly retryAfter: number | null;

  constructor(problem: Problem, retryAfter: number | null) {
    super(problem.message);
    this.name = "VericodeApiError";
    this.code = problem.code;
    this.status = problem.status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }

  get attemptsRemaining(): number | null {
    return typeof this.problem.attempts_remaining === "number" ? this.problem.attempts_remaining : null;
  }

  /** The fields a validation_error names, with what was wrong with each. */
  get fieldErrors(): FieldError[] {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

/** Where the client keeps its tokens; the default keeps them in memory. */
export interface TokenStore {
  get(): Tokens | null;
  set(tokens: Tokens | null): void;
}

export function memoryTokenStore(initial: Tokens | null = null): TokenStore {
  let tokens = initial;
  return {
    get: () => tokens,
    set: (next) => {
      tokens = next;
    },
  };
}

/** Keeps the tokens in a Web Storage area (sessionStorage by default in pages), under `key`. */
export function webStorageTokenStore(
  storage: { getItem(key: string): string | null; setItem(key: string, value: string): void; removeItem(key: string): void },
  key = "vericode.tokens",
): TokenStore {
  return {
    get: () => {
      const raw = storage.getItem(key);
      if (raw === null) return null;
      try {
        const parsed = JSON.parse(raw) as Partial<Tokens>;
        return typeof parsed.access === "string" && typeof parsed.refresh === "string"
          ? { access: parsed.access, refresh: parsed.refresh }
          : null;
      } catch {
        return null;
      }
    },
    set: (tokens) => (tokens === null ? storage.removeItem(key) : storage.setItem(key, JSON.stringify(tokens))),
  };
}

export interface ClientOptions {
  /** The service's address; "" (the default) means the page's own origin. */
  baseUrl?: string;
  tokens?: TokenStore;
  fetch?: typeof fetch;
  /** Extra headers on every request (Accept-Language, say). */
  headers?: Record<string, string>;
}

export interface VericodeClient {
  /** The tokens held now, or null when signed out. */
  readonly tokens: Tokens | null;
  register(registration: Registration): Promise<{ user: User } & Tokens>;
  login(credentials: Credentials): Promise<Tokens>;
  /** Forgets the tokens (they stay valid until they expire: the API has no revocation endpoint for one session). */
  logout(): void;
  refresh(): Promise<string>;
  me(): Promise<User>;
  /**
   * Sends a code. Every send carries an Idempotency-Key (a new random one, or `options.idempotencyKey`):
   * when the network fails or the first attempt is still running, the client retries once with the same
   * key, so the code is never sent twice.
   */
  sendOtp(request: SendOtpRequest, options?: SendOptions): Promise<SendOtpAnswer>;
  verifyOtp(request: VerifyOtpRequest): Promise<VerifyOtpAnswer>;
  otpStatus(id: string): Promise<OtpRecord>;
  /** Passwordless login, step 1: always resolves the same message (no enumeration). */
  startLogin(phoneNumber: string, options?: SendOptions): Promise<FlowStarted>;
  /** Passwordless login, step 2: the code for tokens, which the client keeps. */
  finishLogin(phoneNumber: string, code: string): Promise<Tokens>;
  /** Password reset, step 1: always resolves the same message. */
  startPasswordReset(phoneNumber: string, options?: SendOptions): Promise<FlowStarted>;
  /** Password reset, step 2: sets the password; every refresh token of the account is revoked. */
  confirmPasswordReset(phoneNumber: string, code: string, newPassword: string): Promise<{ success: true; message: string }>;
  /** Admins only (`vericode user promote`): the headline figures of a range. */
  summary(params?: ReportParams): Promise<ReportSummary>;
  /** Admins only: the same figures per day or hour. */
  timeseries(params?: ReportParams): Promise<ReportTimeseries>;
}

/** How a request that sends a code is made safe to retry. */
export interface SendOptions {
  /** The Idempotency-Key to send (1 to 255 printable characters). @default a new random UUID per call */
  idempotencyKey?: string;
}

type Method = "GET" | "POST";

/** The longest a retry waits for the first attempt of the same key to answer. */
const RETRY_WAIT_CAP_S = 5;

export function createClient(options: ClientOptions = {}): VericodeClient {
  const base = (options.baseUrl ?? "").replace(/\/+$/, "");
  const store = options.tokens ?? memoryTokenStore();
  const doFetch: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  let refreshing: Promise<string> | null = null;

  /**
   * A request that sends a code: with an Idempotency-Key, and one retry with the same key when the network
   * failed or the first attempt was still running (the server answers the first attempt's answer).
   */
  async function send<T>(path: string, body: unknown, bearer: boolean, sendOptions: SendOptions = {}): Promise<T> {
    const key = sendOptions.idempotencyKey ?? globalThis.crypto.randomUUID();
    try {
      return await call<T>("POST", path, body, bearer, key);
    } catch (error) {
      if (!(error instanceof VericodeApiError) || (error.code !== "network_error" && error.code !== "idempotency_key_in_use")) throw error;
      const wait = Math.min(error.retryAfter ?? 1, RETRY_WAIT_CAP_S);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      return call<T>("POST", path, body, bearer, key);
    }
  }

  async function call<T>(method: Method, path: string, body: unknown, bearer: boolean, idempotencyKey?: string): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json, application/problem+json", ...options.headers };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (idempotencyKey !== undefined) headers["idempotency-key"] = idempotencyKey;
    const tokens = store.get();
    if (bearer) {
      if (tokens === null) throw new VericodeApiError({ status: 401, code: "unauthorized", message: "Sign in first." }, null);
      headers.authorization = `Bearer ${tokens.access}`;
    }
    let response: Response;
    try {
      response = await doFetch(base + path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new VericodeApiError({ status: 0, code: "network_error", message: `The service could not be reached (${reason}).` }, null);
    }
    if (response.ok) return (response.status === 204 ? undefined : await response.json()) as T;
    const failure = await problemOf(response);
    // An expired access token is renewed once with the refresh token, then the request is retried.
    if (bearer && failure.status === 401 && tokens?.refresh !== undefined && path !== REFRESH_PATH) {
      await refreshOnce();
      return call<T>(method, path, body, bearer, idempotencyKey);
    }
    throw failure;
  }

  function refreshOnce(): Promise<string> {
    refreshing ??= (async () => {
      const tokens = store.get();
      if (tokens === null) throw new VericodeApiError({ status: 401, code: "unauthorized", message: "Sign in first." }, null);
      try {
        const { access } = await call<{ access: string }>("POST", REFRESH_PATH, { refresh: tokens.refresh }, false);
        store.set({ access, refresh: tokens.refresh });
        return access;
      } catch (error) {
        if (error instanceof VericodeApiError && error.status === 401) store.set(null);
        throw error;
      }
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  const keep = <T extends Tokens>(answer: T): T => {
    store.set({ access: answer.access, refresh: answer.refresh });
    return answer;
  };

  return {
    get tokens() {
      return store.get();
    },
    register: async (registration) => keep(await call<{ user: User } & Tokens>("POST", "/api/v1/auth/register/", registration, false)),
    login: async (credentials) => keep(await call("POST", "/api/v1/auth/token/", credentials, false)),
    logout: () => store.set(null),
    refresh: refreshOnce,
    me: () => call("GET", "/api/v1/auth/me/", undefined, true),
    sendOtp: (request, sendOptions) => send("/api/v1/messaging/send-otp/", request, true, sendOptions),
    verifyOtp: (request) => call("POST", "/api/v1/messaging/verify-otp/", request, true),
    otpStatus: (id) => call("GET", `/api/v1/messaging/otp/${encodeURIComponent(id)}/`, undefined, true),
    startLogin: (phone_number, sendOptions) => send("/api/v1/auth/login/otp/", { phone_number }, false, sendOptions),
    finishLogin: async (phone_number, otp_code) =>
      keep(await call("POST", "/api/v1/auth/login/otp/verify/", { phone_number, otp_code }, false)),
    startPasswordReset: (phone_number, sendOptions) => send("/api/v1/auth/password-reset/", { phone_number }, false, sendOptions),
    confirmPasswordReset: (phone_number, otp_code, new_password) =>
      call("POST", "/api/v1/auth/password-reset/confirm/", { phone_number, otp_code, new_password }, false),
    summary: (params = {}) => call("GET", `/api/v1/analytics/summary/${queryString(params)}`, undefined, true),
    timeseries: (params = {}) => call("GET", `/api/v1/analytics/timeseries/${queryString(params)}`, undefined, true),
  };
}

const REFRESH_PATH = "/api/v1/auth/token/refresh/";

function queryString(params: ReportParams): string {
  const entries = Object.entries(params).filter(([, value]) => value !== undefined && value !== "") as [string, string][];
  return entries.length === 0 ? "" : `?${new URLSearchParams(entries).toString()}`;
}

async function problemOf(response: Response): Promise<VericodeApiError> {
  const retry = response.headers.get("retry-after");
  const retryAfter = retry !== null && /^\d+$/.test(retry) ? Number(retry) : null;
  let problem: Problem;
  try {
    const body = (await response.json()) as Partial<Problem>;
    problem = {
      ...body,
      status: typeof body.status === "number" ? body.status : response.status,
      code: typeof body.code === "string" ? body.code : "internal_error",
      message: typeof body.message === "string" ? body.message : response.statusText || `HTTP ${response.status}`,
    };
  } catch {
    problem = {
      status: response.status,
      code: response.status >= 500 ? "service_unavailable" : "internal_error",
      message: `HTTP ${response.status}`,
    };
  }
  return new VericodeApiError(problem, retryAfter);
}

/**
 * What to tell a person about each error code, in plain words: what happened and what to do. The API's
 * own `message` is more precise (it says how many tries are left, which field is wrong); these are for
 * a UI's headline.
 */
export const ERROR_MESSAGES: Record<ErrorCode, string> = {
  validation_error: "Some fields are missing or not valid. Check the form and try again.",
  invalid_phone_number: "That phone number is not valid. Write it in international form, like +50688887777.",
  unauthorized: "Your session has ended or the credentials are wrong. Sign in again.",
  otp_invalid: "That code is not right. Check the message and type it again.",
  otp_expired: "That code has expired. Ask for a new one.",
  otp_attempts_exceeded: "Too many wrong tries for this code. Ask for a new one.",
  otp_not_found: "There is no code waiting for this number. Ask for one first.",
  rate_limited: "Too many requests. Wait a little and try again.",
  destination_not_allowed: "Codes cannot be sent to this number (its country or kind of line is not allowed).",
  provider_rejected: "The messaging provider refused this number. Try another number or channel.",
  provider_unavailable: "The message could not be sent right now. Try again in a moment.",
  unsupported_media_type: "The app sent a request the service does not understand.",
  payload_too_large: "The request is too large.",
  internal_error: "Something went wrong on our side. Try again.",
  not_found: "Not found.",
  service_unavailable: "The service is unavailable right now. Try again shortly.",
  budget_exceeded: "Sending is paused for now (the messaging budget is spent). Try again later.",
  forbidden: "This request is not allowed.",
  channel_unavailable: "That way of sending codes is not available here. Choose SMS.",
  invalid_email: "That email address is not valid.",
  phone_verification_required: "Verify your phone number first.",
  idempotency_key_reused: "This request was already made with other details. Start it again.",
  idempotency_key_in_use: "The same request is still on its way. Wait a moment.",
  method_not_allowed: "The app asked the service in a way it does not answer.",
  network_error: "The service could not be reached. Check your connection.",
};

/** A headline for any error: the code's plain message, with the wait or the tries left when known. */
export function describeError(error: unknown): string {
  if (!(error instanceof VericodeApiError)) return error instanceof Error ? error.message : String(error);
  const headline = (ERROR_MESSAGES as Record<string, string>)[error.code] ?? error.message;
  const tries = error.attemptsRemaining;
  if (error.code === "otp_invalid" && tries !== null) return `${headline} ${tries === 1 ? "1 try left." : `${tries} tries left.`}`;
  if (error.retryAfter !== null && (error.code === "rate_limited" || error.status >= 500)) {
    return `${headline} (wait ${formatWait(error.retryAfter)})`;
  }
  return headline;
}

function formatWait(seconds: number): string {
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}
