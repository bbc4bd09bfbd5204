import type { TSchema } from "@sinclair/typebox";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReportParams } from "../../src/analytics/range.js";
import { FIELD_ERROR_CODES, type FieldSchema, fieldMessage } from "../../src/field-errors.js";
import { IdempotencyHeaders } from "../../src/http/idempotency.js";
import {
  FlowStartBody,
  LoginOtpBody,
  OtpIdParams,
  RefreshBody,
  RegisterBody,
  ResetConfirmBody,
  SendOtpBody,
  TokenBody,
  VerifyOtpBody,
} from "../../src/http/schemas.js";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { startService, type TestService } from "../support/service.js";

/** Every request schema of the API: the catalogue's words are made of these. */
const REQUEST_SCHEMAS: Record<string, TSchema> = {
  RegisterBody,
  TokenBody,
  RefreshBody,
  SendOtpBody,
  VerifyOtpBody,
  OtpIdParams,
  FlowStartBody,
  LoginOtpBody,
  ResetConfirmBody,
  ReportParams,
  IdempotencyHeaders,
};

const PHONE = "is not valid: use a phone number in international format, such as +50688887777";
const PHONE_HINT = (given: string) => `"${given}" is not a valid phone number. Use the international format, for example +50688887777.`;
const USERNAME = "is not valid: use 3 to 150 characters, only letters, digits and . _ @ + -";
const PURPOSES = "one of registration, login, password_reset";
const CODE = "4 to 10 digits";

interface Case {
  /** What the case shows. */
  name: string;
  method?: "GET" | "POST";
  url: string;
  payload?: object;
  headers?: Record<string, string>;
  /** The problem's code; validation_error unless said. */
  code?: string;
  /** The detail, when it is not the field errors' sentences. */
  detail?: string;
  errors: { field: string; code: string; message: string }[];
}

/** Each kind of field error on the routes that give it, with the exact words a person reads. */
const CASES: Case[] = [
  {
    name: "register: a bad username, password and phone number at once, the phone included",
    url: "/api/v1/auth/register/",
    payload: { username: "a!", password: "short", phone_number: "12345" },
    errors: [
      { field: "username", code: "invalid_format", message: USERNAME },
      { field: "password", code: "too_short", message: "is too short: use 8 to 128 characters" },
      { field: "phone_number", code: "invalid_format", message: PHONE },
    ],
  },
  {
    name: "register: a type, a length, an email format and an unknown field",
    url: "/api/v1/auth/register/",
    payload: { email: "not-an-address", password: "x".repeat(129), colour: "blue", phone_number: 50688887777 },
    errors: [
      { field: "email", code: "invalid_format", message: "is not valid: use an email address, such as ana@example.com" },
      { field: "password", code: "too_long", message: "is too long: use 8 to 128 characters" },
      {
        field: "phone_number",
        code: "invalid_type",
        message: `must be a string (in quotes): give a phone number in international format, such as +50688887777`,
      },
      {
        field: "colour",
        code: "unknown_field",
        message: "is not a field of this request: leave it out (the fields are username, email, password, phone_number)",
      },
    ],
  },
  {
    name: "register: neither a username nor an email, and no password",
    url: "/api/v1/auth/register/",
    payload: {},
    errors: [
      { field: "username", code: "required", message: "is required, or email: give a username or an email address" },
      { field: "password", code: "required", message: "is required: give 8 to 128 characters" },
    ],
  },
  {
    name: "register: a valid form with a number that is not one is invalid_phone_number, with send-otp's hint",
    url: "/api/v1/auth/register/",
    payload: { username: "catalogue", password: "long enough password", phone_number: "12345" },
    code: "invalid_phone_number",
    detail: PHONE_HINT("12345"),
    errors: [{ field: "phone_number", code: "invalid_format", message: PHONE }],
  },
  {
    name: "token: an empty sign-in form",
    url: "/api/v1/auth/token/",
    payload: { username: "", password: "" },
    errors: [
      { field: "username", code: "too_short", message: "is empty: give your username" },
      { field: "password", code: "too_short", message: "is empty: give your password" },
    ],
  },
  {
    name: "token: both a username and an email",
    url: "/api/v1/auth/token/",
    payload: { username: "ana", email: "ana@example.com", password: "x" },
    errors: [{ field: "email", code: "conflicting_fields", message: "cannot come with username: give one of the two" }],
  },
  {
    name: "token: nothing at all",
    url: "/api/v1/auth/token/",
    payload: {},
    errors: [
      { field: "username", code: "required", message: "is required, or email: give your username or your email address" },
      { field: "password", code: "required", message: "is required: give your password" },
    ],
  },
  {
    name: "refresh: an empty token",
    url: "/api/v1/auth/token/refresh/",
    payload: { refresh: "" },
    errors: [{ field: "refresh", code: "too_short", message: "is empty: give the refresh token /auth/token/ answered" }],
  },
  {
    name: "send-otp: every field wrong, the allowed values listed",
    url: "/api/v1/messaging/send-otp/",
    payload: { phone_number: "12345", purpose: "signup", channel: "fax", locale: "not a tag" },
    errors: [
      { field: "phone_number", code: "invalid_format", message: PHONE },
      { field: "purpose", code: "not_allowed_value", message: `is not an allowed value: use ${PURPOSES}` },
      { field: "channel", code: "not_allowed_value", message: "is not an allowed value: use one of sms, whatsapp, voice, email" },
      {
        field: "locale",
        code: "invalid_format",
        message: "is not valid: use a language tag of up to 35 characters, such as es, en or pt-BR (BCP 47)",
      },
    ],
  },
  {
    name: "send-otp: a locale too long, no purpose, and a bad Idempotency-Key header",
    url: "/api/v1/messaging/send-otp/",
    payload: { phone_number: "+50688887777", locale: "a".repeat(36) },
    headers: { "idempotency-key": "k".repeat(256) },
    errors: [
      { field: "purpose", code: "required", message: `is required: give ${PURPOSES}` },
      {
        field: "locale",
        code: "too_long",
        message: "is too long: use a language tag of up to 35 characters, such as es, en or pt-BR (BCP 47)",
      },
      { field: "idempotency-key", code: "too_long", message: "is too long: use 1 to 255 printable ASCII characters" },
    ],
  },
  {
    name: "send-otp: the email channel without an email",
    url: "/api/v1/messaging/send-otp/",
    payload: { phone_number: "+50688887777", purpose: "login", channel: "email" },
    errors: [
      {
        field: "email",
        code: "required",
        message: "is required for the email channel, instead of phone_number: give an email address, such as ana@example.com",
      },
    ],
  },
  {
    name: "send-otp: a number alone that is not one",
    url: "/api/v1/messaging/send-otp/",
    payload: { phone_number: "12345", purpose: "login" },
    code: "invalid_phone_number",
    detail: PHONE_HINT("12345"),
    errors: [{ field: "phone_number", code: "invalid_format", message: PHONE }],
  },
  {
    name: "verify-otp: letters in the code, a number as the purpose, no destination",
    url: "/api/v1/messaging/verify-otp/",
    payload: { otp_code: "12ab", purpose: 1 },
    errors: [
      {
        field: "phone_number",
        code: "required",
        message: "is required: give a phone number in international format, such as +50688887777",
      },
      { field: "otp_code", code: "invalid_format", message: `is not valid: use ${CODE}` },
      { field: "purpose", code: "invalid_type", message: `must be a string (in quotes): give ${PURPOSES}` },
    ],
  },
  {
    name: "verify-otp: a code as a JSON number, too long as a string",
    url: "/api/v1/messaging/verify-otp/",
    payload: { phone_number: "+50688887777", email: "ana@example.com", otp_code: 123456, purpose: "login" },
    errors: [
      { field: "phone_number", code: "conflicting_fields", message: "cannot come with email: give one of the two" },
      { field: "otp_code", code: "invalid_type", message: `must be a string (in quotes): give ${CODE}` },
    ],
  },
  {
    name: "a code's record: an id that is not one",
    method: "GET",
    url: "/api/v1/messaging/otp/12/",
    errors: [
      { field: "id", code: "invalid_format", message: "is not valid: use the id send-otp answered: otp_ and 32 hexadecimal digits" },
    ],
  },
  {
    name: "login/otp: a number that is not one, with send-otp's hint",
    url: "/api/v1/auth/login/otp/",
    payload: { phone_number: "12345" },
    code: "invalid_phone_number",
    detail: PHONE_HINT("12345"),
    errors: [{ field: "phone_number", code: "invalid_format", message: PHONE }],
  },
  {
    name: "login/otp/verify: the number and the code",
    url: "/api/v1/auth/login/otp/verify/",
    payload: { phone_number: "12345", otp_code: "12345678901" },
    errors: [
      { field: "phone_number", code: "invalid_format", message: PHONE },
      { field: "otp_code", code: "too_long", message: `is too long: use ${CODE}` },
    ],
  },
  {
    name: "password-reset: a number that is not one, with send-otp's hint",
    url: "/api/v1/auth/password-reset/",
    payload: { phone_number: "88 88 77 77" },
    code: "invalid_phone_number",
    detail: PHONE_HINT("88 88 77 77"),
    errors: [{ field: "phone_number", code: "invalid_format", message: PHONE }],
  },
  {
    name: "password-reset/confirm: an empty number, a code and a password too short",
    url: "/api/v1/auth/password-reset/confirm/",
    payload: { phone_number: "", otp_code: "12", new_password: "short" },
    errors: [
      { field: "phone_number", code: "too_short", message: "is empty: give a phone number in international format, such as +50688887777" },
      { field: "otp_code", code: "invalid_format", message: `is not valid: use ${CODE}` },
      { field: "new_password", code: "too_short", message: "is too short: use 8 to 128 characters" },
    ],
  },
  {
    name: "analytics: a duration, a grouping, a country and a parameter that do not exist",
    method: "GET",
    url: "/api/v1/analytics/summary/?since=forever&group_by=week&country=CRI&colour=blue",
    errors: [
      {
        field: "since",
        code: "invalid_format",
        message:
          "is not valid: use a duration such as 90m, 24h, 7d or 2w, or an ISO 8601 date or time, such as 2026-11-01 or 2026-11-01T12:00:00Z",
      },
      { field: "group_by", code: "not_allowed_value", message: "is not an allowed value: use one of day, hour" },
      { field: "country", code: "too_long", message: "is too long: use an ISO 3166 alpha-2 country code, such as CR" },
      {
        field: "colour",
        code: "unknown_field",
        message:
          "is not a field of this request: leave it out (the fields are since, from, to, group_by, purpose, service, channel, country)",
      },
    ],
  },
  {
    name: "analytics: since with from, a purpose and a channel it does not know, an ISO time that is not one",
    method: "GET",
    url: "/api/v1/analytics/timeseries/?since=7d&from=2026-11-01&to=yesterday&purpose=signup&channel=fax&country=C1",
    errors: [
      { field: "since", code: "conflicting_fields", message: "cannot come with from: give one of the two" },
      {
        field: "to",
        code: "invalid_format",
        message: "is not valid: use an ISO 8601 date or time, such as 2026-11-01 or 2026-11-01T12:00:00Z",
      },
      {
        field: "purpose",
        code: "invalid_format",
        message: "is not valid: use one of registration, login, password_reset, or verify: and a Verify service's sid",
      },
      { field: "channel", code: "not_allowed_value", message: "is not an allowed value: use one of sms, whatsapp, voice, email" },
      { field: "country", code: "invalid_format", message: "is not valid: use an ISO 3166 alpha-2 country code, such as CR" },
    ],
  },
  {
    name: "analytics: ranges out of bounds",
    method: "GET",
    url: "/api/v1/analytics/timeseries/?from=2026-11-02&to=2026-11-01&group_by=hour",
    errors: [{ field: "from", code: "out_of_range", message: "is not before to: give a start before the end" }],
  },
  {
    name: "analytics: an hourly series over 31 days",
    method: "GET",
    url: "/api/v1/analytics/timeseries/?since=60d&group_by=hour",
    errors: [{ field: "group_by", code: "out_of_range", message: "is hour over more than 31 days: use day, or a shorter range" }],
  },
  {
    name: "analytics: a range over 366 days",
    method: "GET",
    url: "/api/v1/analytics/summary/?from=2024-01-01&to=2026-01-01",
    errors: [{ field: "from", code: "out_of_range", message: "is more than 366 days before to: a report covers at most 366 days" }],
  },
  {
    name: "the body as a whole: not a JSON object",
    url: "/api/v1/auth/login/otp/",
    payload: ["+50688887777"],
    errors: [{ field: "body", code: "invalid_type", message: "must be a JSON object" }],
  },
];

describe("the validation message catalogue", () => {
  let db: TestDatabase;
  let service: TestService;
  let user: string;
  let admin: string;

  beforeAll(async () => {
    db = sqliteDatabase();
    service = await startService(db);
    user = `Bearer ${service.tokenFor("usr_catalogue")}`;
    admin = `Bearer ${service.vericode.tokens.issueAccess({ id: "usr_catalogue_admin", role: "admin" })}`;
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  it.each(CASES.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const authorization = c.url.includes("/analytics/") ? admin : user;
    const response = await service.app.inject({
      method: c.method ?? "POST",
      url: c.url,
      headers: { authorization, ...c.headers },
      ...(c.payload === undefined ? {} : { payload: c.payload }),
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers["content-type"]).toContain("application/problem+json");
    const problem = response.json();
    expect(problem.code).toBe(c.code ?? "validation_error");
    expect(problem.errors).toEqual(c.errors);
    const sentences = c.errors.map((e) => `${e.field} ${e.message}.`);
    const detail =
      c.detail ?? (sentences.length === 1 ? sentences[0] : [`${sentences.length} fields are not valid.`, ...sentences].join(" "));
    expect(problem.detail).toBe(detail);
    expect(problem.message).toBe(detail);
  });

  it("covers every field error code on a real route, but already_registered (test/http/auth.security.test.ts)", () => {
    const shown = new Set(CASES.flatMap((c) => c.errors.map((e) => e.code)));
    expect([...FIELD_ERROR_CODES].filter((code) => !shown.has(code))).toEqual(["already_registered"]);
  });

  it("answers a schema error before authentication, as it always did: no token, the same field errors", async () => {
    const response = await service.app.inject({ method: "POST", url: "/api/v1/messaging/send-otp/", payload: { purpose: "signup" } });
    expect(response.json()).toMatchObject({ code: "validation_error", errors: [{ field: "phone_number" }, { field: "purpose" }] });
  });

  it("words every field of every request schema in a person's words: no pattern, no validator's phrase", () => {
    const words: string[] = [];
    for (const [name, schema] of Object.entries(REQUEST_SCHEMAS)) {
      const properties = (schema as FieldSchema).properties ?? {};
      const fields = Object.keys(properties);
      for (const [field, fieldSchema] of Object.entries(properties)) {
        for (const code of FIELD_ERROR_CODES) {
          const message = fieldMessage(code, fieldSchema, { fields });
          words.push(`${name}.${field} ${code}: ${message}`);
          expect(message, `${name}.${field} ${code}`).toMatch(/^(is|must|cannot) /);
          expect(message, `${name}.${field} ${code}`).not.toMatch(/text matching|\^|\$|must match|NOT have|must be equal|\{\d/);
        }
      }
    }
    expect(words.length).toBeGreaterThan(300);
  });
});
