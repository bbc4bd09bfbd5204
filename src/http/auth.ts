import type { FastifyReply, FastifyRequest } from "fastify";
import { type AccessClaims, BearerError, type TokenService } from "../accounts/tokens.js";
import { VericodeError } from "../errors.js";
import type { Vericode } from "../vericode.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the `authenticate` pre-handler on protected routes. */
    auth: AccessClaims | null;
  }
}

/**
 * A pre-handler that requires `Authorization: Bearer <JWT>` and sets `request.auth`. Its 401s follow
 * RFC 6750 §3.1: no error code when no bearer credential was sent (no header, or another scheme),
 * `invalid_request` for a Bearer header that is not `Bearer <token>`, `invalid_token` for a refused token.
 */
export function bearerAuth(tokens: TokenService) {
  return async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization?.trim() ?? "";
    if (header === "") throw new VericodeError("unauthorized", "Send a token: Authorization: Bearer <JWT>.");
    const [scheme, ...rest] = header.split(/ +/);
    // The scheme is case-insensitive (RFC 9110 §11.1); another scheme is a credential vericode does not take.
    if (scheme?.toLowerCase() !== "bearer") {
      throw new VericodeError("unauthorized", "Send a token with the Bearer scheme: Authorization: Bearer <JWT>.");
    }
    const token = rest.length === 1 ? rest[0] : undefined;
    // RFC 6750's b64token: one run of these characters after the scheme and a space, nothing else.
    if (token === undefined || !/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
      throw new BearerError("invalid_request", "The Authorization header must be: Bearer <JWT>.");
    }
    request.auth = await tokens.verifyAccess(token);
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
