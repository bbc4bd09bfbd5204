import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { VericodeError } from "../../errors.js";
import { isDeliveryStatus, TWILIO_STATUS_PATH } from "../../otp/delivery.js";
import type { Vericode } from "../../vericode.js";
import { methodNotAllowed } from "../method-not-allowed.js";
import { problems } from "../schemas.js";

type ValidateRequest = (authToken: string, signature: string, url: string, params: Record<string, string>) => boolean;
/**
 * Twilio's SDK, loaded on the first callback: the SDK is some 20 MB of the process's memory, which a
 * service that is never called back (the console provider, email only) should not carry.
 */
let validator: Promise<ValidateRequest> | undefined;
function validateRequest(): Promise<ValidateRequest> {
  if (validator === undefined) validator = import("twilio").then((sdk) => sdk.default.validateRequest);
  return validator;
}

/**
 * Twilio's status callbacks: form-encoded POSTs signed with the account's auth token. The signature is
 * checked with the SDK's own `validateRequest` over the URL as configured (PUBLIC_BASE_URL + the path)
 * and every parameter received; anything unsigned or mis-signed is refused with 403 and changes nothing.
 */
export const twilioStatusRoutes: FastifyPluginAsyncTypebox<{ vericode: Vericode }> = async (app, { vericode }) => {
  // Form bodies are read in this route's scope only; the JSON API keeps refusing them.
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  const url = `${vericode.config.publicBaseUrl}${TWILIO_STATUS_PATH}`;
  const refuseOtherMethods = methodNotAllowed(app);

  app.post(
    TWILIO_STATUS_PATH,
    {
      schema: {
        tags: ["messaging"],
        summary: "Twilio's message status callback",
        description:
          "Called by Twilio, never by clients: `X-Twilio-Signature` must sign PUBLIC_BASE_URL + this path and every parameter. A status only moves forward (queued → sent → delivered / undelivered / failed → read); replays and late callbacks change nothing.",
        body: Type.Record(Type.String(), Type.String()),
        response: { 204: Type.Null(), ...problems(400, 403, 415, 503) },
      },
    },
    async (request, reply) => {
      const params = request.body;
      const signature = request.headers["x-twilio-signature"];
      const account = vericode.config.twilio;
      const signed =
        account?.authToken != null &&
        typeof signature === "string" &&
        (await validateRequest())(account.authToken, signature, url, params) &&
        params.AccountSid === account.accountSid;
      if (!signed) throw new VericodeError("forbidden", "This callback is not signed by Twilio for this service.");

      // Messages report MessageSid / MessageStatus, calls CallSid / CallStatus.
      const sid = params.MessageSid ?? params.SmsSid ?? params.CallSid;
      const status = (params.MessageStatus ?? params.SmsStatus ?? params.CallStatus ?? "").toLowerCase();
      if (sid === undefined || !isDeliveryStatus(status)) {
        throw new VericodeError("validation_error", "A status callback carries MessageSid and a known MessageStatus.");
      }
      const errorCode = params.ErrorCode === undefined || params.ErrorCode === "" ? null : params.ErrorCode;
      const changed = await vericode.store
        .recordDeliveryStatus(sid, status, errorCode, vericode.clock.now().getTime())
        .catch((error: unknown) => {
          throw new VericodeError("service_unavailable", "The service cannot reach its database. Try again shortly.", {
            retryAfter: 5,
            cause: error,
          });
        });
      request.log.info({ event: "otp.delivery", providerMessageId: sid, status, errorCode, changed }, "delivery status");
      return reply.code(204).send(null);
    },
  );

  refuseOtherMethods();
};
