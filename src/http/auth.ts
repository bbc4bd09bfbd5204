import type { FastifyReply, FastifyRequest } from "fastify";
import type { AccessClaims, TokenService } from "../accounts/tokens.js";
import { VericodeError } from "../errors.js";
import type { Vericode } from "../vericode.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the `authenticate` pre-handler on protected routes. */
    auth: AccessClaims | null;
  }
}

/** A pre-handler that requires `Authorization: Bearer <JWT>` and sets `request.auth`. */
export function bearerAuth(tokens: TokenService) {
  return async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization;
    if (header === undefined) throw new VericodeError("unauthorized", "Send a token: Authorization: Bearer <JWT>.");
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)$/.exec(header.trim());
    if (match?.[1] === undefined) throw new VericodeError("unauthorized", "The Authorization header must be: Bearer <JWT>.");
    request.auth = await tokens.verifyAccess(match[1]);
  };
}

/** The authenticated subject of a protected route. */
export function subject(request: FastifyRequest): AccessClaims {
  if (request.auth === null) throw new VericodeError("unauthorized", "Authentication required.");
  return request.auth;
}

/**
 * With `REQUIRE_PHONE_VERIFICATION=true`, refuses (403 `phone_verification_required`) an account of
 * ours whose phone number is not verified. Runs after `bearerAuth`. The database is read each time, so a
 * number verified a moment ago counts at once. Tokens of an external issuer, whose users vericode does
 * not hold, pass. A host application can put it on its own routes:
 *
 * ```ts
 * app.get("/orders", { preHandler: [bearerAuth(app.vericode.tokens), requireVerifiedPhone(app.vericode)] }, handler);
 * ```
 */
export function requireVerifiedPhone(vericode: Pick<Vericode, "config" | "accounts">) {
  return async function verifiedPhone(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    await checkVerifiedPhone(vericode, subject(request));
  };
}

export async function checkVerifiedPhone(vericode: Pick<Vericode, "config" | "accounts">, auth: AccessClaims): Promise<void> {
  if (!vericode.config.requirePhoneVerification || auth.external) return;
  if ((await vericode.accounts.phoneVerified(auth.sub)) === false) {
    throw new VericodeError(
      "phone_verification_required",
      "Verify your phone number first: send and verify a code with purpose registration.",
    );
  }
}
