import { type Static, Type } from "@sinclair/typebox";
import { USERNAME_OR_EMAIL } from "../accounts/accounts.js";
import { ERROR_CODES, type FieldError } from "../errors.js";
import { FIELD, FIELD_ERROR_CODES, ruleWords } from "../field-errors.js";
import { PURPOSES } from "../otp/types.js";
import { PHONE_RULE } from "../phone.js";

/**
 * One definition per shape: it validates requests, serialises answers and writes the OpenAPI document.
 * A field's words for a person (FIELD's `rule`) sit beside its keywords; src/field-errors.ts makes every
 * field error's message of them. Every string carries a maxLength: Ajv runs with allErrors (one answer
 * names every invalid field), which also runs a pattern on a string maxLength already refused, so the
 * bound (and the 16 KiB body limit) keeps a pattern's work small; the patterns are linear besides.
 */

export const Purpose = Type.Unsafe<(typeof PURPOSES)[number]>({
  type: "string",
  enum: [...PURPOSES],
  description: "What the code is for.",
  examples: ["registration"],
});

const PhoneNumber = Type.String({
  minLength: 1,
  maxLength: 32,
  description: "E.164 (+50688887777); national format is read with DEFAULT_COUNTRY.",
  examples: ["+50688887777"],
  [FIELD]: { rule: PHONE_RULE, phone: true },
});

const EmailAddress = Type.String({ format: "email", maxLength: 254, description: "For the email channel, instead of phone_number." });

export const SendOtpBody = Type.Object(
  {
    phone_number: Type.Optional(PhoneNumber),
    email: Type.Optional(EmailAddress),
    purpose: Purpose,
    channel: Type.Optional(
      Type.Union([Type.Literal("sms"), Type.Literal("whatsapp"), Type.Literal("voice"), Type.Literal("email")], {
        description:
          "How the code travels (default sms); email takes `email` instead of `phone_number`. CHANNEL_FALLBACK may send it another way when this one fails.",
      }),
    ),
    locale: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        maxLength: 35,
        description: "BCP 47 language tag.",
        [FIELD]: { rule: "a language tag of up to 35 characters, such as es, en or pt-BR (BCP 47)" },
      }),
    ),
  },
  {
    additionalProperties: false,
    description: "phone_number for sms, whatsapp and voice; email for the email channel.",
    [FIELD]: { check: (body) => destinationErrors(body, body.channel === "email") },
  },
);
export type SendOtpBody = Static<typeof SendOtpBody>;

export const SendOtpAnswer = Type.Object({
  success: Type.Literal(true),
  id: Type.String({ description: "The record's id (otp_…), for its delivery state." }),
  message: Type.String(),
  expires_at: Type.String({ format: "date-time" }),
  resend_after: Type.String({ format: "date-time", description: "Earliest time a new code can be asked for." }),
});

export const VerifyOtpBody = Type.Object(
  {
    phone_number: Type.Optional(PhoneNumber),
    email: Type.Optional(EmailAddress),
    otp_code: Type.String({
      pattern: "^[0-9]{4,10}$",
      maxLength: 10,
      description: "The digits received.",
      examples: ["123456"],
      [FIELD]: { rule: "4 to 10 digits" },
    }),
    purpose: Purpose,
  },
  { additionalProperties: false, [FIELD]: { check: (body) => destinationErrors(body, body.email !== undefined) } },
);
export type VerifyOtpBody = Static<typeof VerifyOtpBody>;

export const OtpIdParams = Type.Object({
  id: Type.String({
    pattern: "^otp_[0-9a-f]{32}$",
    maxLength: 36,
    description: "The id send-otp answered.",
    [FIELD]: { rule: "the id send-otp answered: otp_ and 32 hexadecimal digits" },
  }),
});

export const OtpRecordAnswer = Type.Object({
  id: Type.String(),
  phone_number: Type.String(),
  purpose: Type.String(),
  channel: Type.String(),
  status: Type.String({ description: "pending, sent, failed, verified, superseded or locked." }),
  delivery_status: Type.Union([Type.String(), Type.Null()], {
    description:
      "The provider's last word, moved forward by its status callbacks: null until the provider answers; Twilio's queued (accepted with a messaging service) → sent → delivered, undelivered or failed → read (calls: initiated, ringing, in-progress, completed, busy, no-answer); sent for email (the SMTP server took it); failed when refused at send time; logged when the console provider printed the message instead of sending it (development); not_sent for an OTP_TEST_NUMBERS number.",
  }),
  provider_message_id: Type.Union([Type.String(), Type.Null()]),
  fallback_from: Type.Union([Type.String(), Type.Null()], {
    description:
      "The channel asked for, when it refused or failed the message at send time and CHANNEL_FALLBACK carried the code by `channel` instead; null otherwise.",
  }),
  provider_error_code: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: "date-time" }),
  expires_at: Type.String({ format: "date-time" }),
  verified_at: Type.Union([Type.String({ format: "date-time" }), Type.Null()]),
});

export const VerifyOtpAnswer = Type.Object({
  success: Type.Literal(true),
  message: Type.String(),
  verified_at: Type.String({ format: "date-time" }),
});

const Username = Type.String({
  pattern: "^[A-Za-z0-9_.@+-]{3,150}$",
  maxLength: 150,
  description: "3 to 150 letters, digits or _.@+-",
  [FIELD]: { rule: "3 to 150 characters, only letters, digits and . _ @ + -" },
});
const Email = Type.String({ format: "email", maxLength: 254 });
const Password = Type.String({ minLength: 8, maxLength: 128, description: "8 to 128 characters (NIST SP 800-63B)." });

export const RegisterBody = Type.Object(
  {
    username: Type.Optional(Username),
    email: Type.Optional(Email),
    password: Password,
    phone_number: Type.Optional(PhoneNumber),
  },
  {
    additionalProperties: false,
    [FIELD]: { check: (body) => (body.username === undefined && body.email === undefined ? [USERNAME_OR_EMAIL] : []) },
  },
);
export type RegisterBody = Static<typeof RegisterBody>;

export const User = Type.Object({
  id: Type.String(),
  username: Type.Union([Type.String(), Type.Null()]),
  email: Type.Union([Type.String(), Type.Null()]),
  phone_number: Type.Union([Type.String(), Type.Null()]),
  phone_verified: Type.Boolean(),
});

export const TokenPair = Type.Object({ access: Type.String(), refresh: Type.String() });

export const RegisterAnswer = Type.Object({ user: User, access: Type.String(), refresh: Type.String() });

export const TokenBody = Type.Object(
  {
    username: Type.Optional(Type.String({ minLength: 1, maxLength: 150, [FIELD]: { rule: "your username" } })),
    email: Type.Optional(Type.String({ minLength: 1, maxLength: 254, [FIELD]: { rule: "your email address" } })),
    password: Type.String({ minLength: 1, maxLength: 128, [FIELD]: { rule: "your password" } }),
  },
  { additionalProperties: false, [FIELD]: { check: (body) => oneLoginErrors(body) } },
);
export type TokenBody = Static<typeof TokenBody>;

export const RefreshBody = Type.Object(
  { refresh: Type.String({ minLength: 1, maxLength: 4096, [FIELD]: { rule: "the refresh token /auth/token/ answered" } }) },
  { additionalProperties: false },
);

const OtpCode = VerifyOtpBody.properties.otp_code;

export const FlowStartBody = Type.Object({ phone_number: PhoneNumber }, { additionalProperties: false });
export const FlowStarted = Type.Object({
  success: Type.Literal(true),
  message: Type.String({ description: "The same whether or not the number belongs to an account." }),
});
export const LoginOtpBody = Type.Object({ phone_number: PhoneNumber, otp_code: OtpCode }, { additionalProperties: false });
export const ResetConfirmBody = Type.Object(
  { phone_number: PhoneNumber, otp_code: OtpCode, new_password: Password },
  { additionalProperties: false },
);
export const ResetDone = Type.Object({ success: Type.Literal(true), message: Type.String() });
export type RefreshBody = Static<typeof RefreshBody>;

export const AccessAnswer = Type.Object({ access: Type.String() });

/** RFC 9457 problem document; extra members (errors, attempts_remaining, provider_code) per code. */
export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.Unsafe<string>({ type: "string", enum: [...ERROR_CODES], description: "Stable error code; see docs/errors.md." }),
    success: Type.Literal(false),
    message: Type.String(),
    request_id: Type.String(),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          field: Type.String({ description: "The field, query parameter or header (`body` for the body as a whole)." }),
          code: Type.Unsafe<string>({
            type: "string",
            enum: [...FIELD_ERROR_CODES],
            description: "What is wrong with it, for programs; see docs/errors.md.",
          }),
          message: Type.String({ description: "What is wrong and what to do, in words." }),
        }),
        { description: "validation_error (and invalid_phone_number): every invalid field of the request at once." },
      ),
    ),
    attempts_remaining: Type.Optional(Type.Integer()),
    provider_code: Type.Optional(Type.String()),
    id: Type.Optional(Type.String({ description: "The record of a send that reached the provider and failed." })),
    rule: Type.Optional(
      Type.String({
        description:
          "The protection rule that refused a send or a try: cooldown, locked, challenge, number, user, ip, prefix, global, verify, conversion_breaker, country, prefix_blocked, number_type, budget (docs/protection.md).",
      }),
    ),
  },
  { additionalProperties: true, $id: "Problem" },
);

export const problemRef = Type.Ref("Problem");

/** The error answers a route can give, for the OpenAPI document. */
export function problems(...statuses: number[]): Record<number, typeof problemRef> {
  return Object.fromEntries(statuses.map((status) => [status, problemRef]));
}

/**
 * send-otp's and verify-otp's one destination: `email` for the email channel, `phone_number` for every
 * other; one field error when it is missing or comes with the other.
 */
export function destinationErrors(body: { phone_number?: unknown; email?: unknown }, email: boolean): FieldError[] {
  if (email) {
    if (body.email === undefined) {
      const instead = body.phone_number === undefined ? "" : ", instead of phone_number";
      return [
        { field: "email", code: "required", message: `is required for the email channel${instead}: give ${ruleWords(EmailAddress)}` },
      ];
    }
    return body.phone_number === undefined
      ? []
      : [{ field: "phone_number", code: "conflicting_fields", message: "cannot come with email: give one of the two" }];
  }
  if (body.phone_number === undefined) {
    const instead = body.email === undefined ? "" : " (email is for the email channel only: set channel to email)";
    return [{ field: "phone_number", code: "required", message: `is required: give ${PHONE_RULE}${instead}` }];
  }
  return body.email === undefined
    ? []
    : [{ field: "email", code: "conflicting_fields", message: "cannot come with phone_number: give one of the two" }];
}

/** The token route's rule between its fields: a username or an email, not both. */
function oneLoginErrors(body: { username?: unknown; email?: unknown }): FieldError[] {
  if (body.username === undefined && body.email === undefined) {
    return [{ field: "username", code: "required", message: "is required, or email: give your username or your email address" }];
  }
  if (body.username !== undefined && body.email !== undefined) {
    return [{ field: "email", code: "conflicting_fields", message: "cannot come with username: give one of the two" }];
  }
  return [];
}
