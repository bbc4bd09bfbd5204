import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { failClosed, VericodeError } from "../../errors.js";
import { validationError } from "../../field-errors.js";
import { verifyError } from "../../otp/verify-error.js";
import type { Vericode } from "../../vericode.js";
import { bearerAuth, checkVerifiedPhone, subject } from "../auth.js";
import { IdempotencyHeaders, idempotent } from "../idempotency.js";
import { methodNotAllowed } from "../method-not-allowed.js";
import {
  destinationErrors,
  OtpIdParams,
  OtpRecordAnswer,
  problems,
  SendOtpAnswer,
  SendOtpBody,
  VerifyOtpAnswer,
  VerifyOtpBody,
} from "../schemas.js";
import { answerEveryField } from "../validation.js";

// Sends and verifies guard their own calls (OtpService); the other reads of the database go through this.
const guard = failClosed("database");

export const messagingRoutes: FastifyPluginAsyncTypebox<{ vericode: Vericode }> = async (app, { vericode }) => {
  answerEveryField(app, vericode);
  const refuseOtherMethods = methodNotAllowed(app);
  const authenticate = bearerAuth(vericode.tokens);
  const sendOnce = idempotent(vericode, "send-otp", (request) => `sub:${subject(request).sub}`);

  app.post(
    "/api/v1/messaging/send-otp/",
    {
      preHandler: [authenticate, sendOnce.preHandler],
      onSend: sendOnce.onSend,
      schema: {
        tags: ["messaging"],
        summary: "Send a one-time code to a phone number",
        description:
          "Sends a new code bound to the number, the purpose and the token's user. The last three codes of the same challenge stay valid until their own expiry. Protection rules apply first (docs/protection.md): 422 destination_not_allowed (country, number range or type), 429 rate_limited (cooldown, limits, conversion breaker) and 503 budget_exceeded, each with `rule`; nothing is sent then.",
        security: [{ bearer: [] }],
        headers: IdempotencyHeaders,
        body: SendOtpBody,
        response: { 200: SendOtpAnswer, ...problems(400, 401, 403, 409, 413, 415, 422, 429, 502, 503, 504) },
      },
    },
    async (request) => {
      const { purpose, locale, channel = "sms" } = request.body;
      const destination = destinationOf(request.body, channel === "email");
      if (purpose !== "registration") await checkVerifiedPhone(vericode, subject(request));
      const result = await vericode.otp.sendOtp(destination, subject(request).sub, purpose, {
        ip: request.ip,
        locale: locale ?? null,
        acceptLanguage: request.headers["accept-language"] ?? null,
        channel,
      });
      if (!result.ok) {
        throw new VericodeError(result.code, result.message, {
          ...(result.status === undefined ? {} : { status: result.status }),
          ...(result.retryAfter === undefined ? {} : { retryAfter: result.retryAfter }),
          extra: {
            ...(result.providerCode === undefined ? {} : { provider_code: result.providerCode }),
            ...(result.id === null ? {} : { id: result.id }),
            ...(result.rule === undefined ? {} : { rule: result.rule }),
          },
        });
      }
      return {
        success: true as const,
        id: result.id,
        message: result.message,
        expires_at: result.expiresAt.toISOString(),
        resend_after: result.resendAfter.toISOString(),
      };
    },
  );

  app.post(
    "/api/v1/messaging/verify-otp/",
    {
      preHandler: authenticate,
      schema: {
        tags: ["messaging"],
        summary: "Verify a one-time code",
        description:
          "Counts the try in the same atomic step as the comparison, which is in constant time; a code verifies at most once. A registration code marks the user's phone number verified. Tries per number and purpose are also limited over a longer window (RATE_LIMIT_VERIFY): 429 rate_limited.",
        security: [{ bearer: [] }],
        body: VerifyOtpBody,
        response: { 200: VerifyOtpAnswer, ...problems(400, 401, 403, 413, 415, 429, 503) },
      },
    },
    async (request) => {
      const { otp_code, purpose } = request.body;
      const destination = destinationOf(request.body, request.body.email !== undefined);
      if (purpose !== "registration") await checkVerifiedPhone(vericode, subject(request));
      const result = await vericode.otp.verifyOtp(destination, otp_code, subject(request).sub, purpose);
      if (!result.ok) throw verifyError(result);
      return { success: true as const, message: result.message, verified_at: result.verifiedAt.toISOString() };
    },
  );

  app.get(
    "/api/v1/messaging/otp/:id/",
    {
      preHandler: authenticate,
      schema: {
        tags: ["messaging"],
        summary: "The delivery state of a code sent",
        description:
          "The record of a send-otp, for the user it was sent for only (anyone else gets 404): its status and the provider's delivery status, updated by Twilio's status callbacks.",
        security: [{ bearer: [] }],
        params: OtpIdParams,
        response: { 200: OtpRecordAnswer, ...problems(400, 401, 404, 503) },
      },
    },
    async (request) => {
      const record = await guard(vericode.store.findCode(request.params.id));
      // Someone else's record is answered exactly like a missing one: ids tell nothing about other users.
      if (record === null || record.userId !== subject(request).sub) {
        throw new VericodeError("not_found", "There is no code with this id for you.");
      }
      const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
      return {
        id: record.id,
        phone_number: record.phoneNumber,
        purpose: record.purpose,
        channel: record.channel,
        status: record.status,
        delivery_status: record.deliveryStatus,
        provider_message_id: record.providerMessageId,
        fallback_from: record.fallbackFrom,
        provider_error_code: record.providerErrorCode,
        created_at: new Date(record.createdAt).toISOString(),
        expires_at: new Date(record.expiresAt).toISOString(),
        verified_at: iso(record.verifiedAt),
      };
    },
  );

  refuseOtherMethods();
};

/** The request's one destination: `email` for the email channel, `phone_number` for every other. */
function destinationOf(body: { phone_number?: string | undefined; email?: string | undefined }, email: boolean): string {
  const value = email ? body.email : body.phone_number;
  // SendOtpBody's and VerifyOtpBody's check refused the request before it came here otherwise.
  const errors = destinationErrors(body, email);
  if (value === undefined || errors.length > 0) throw validationError(errors);
  return value;
}
