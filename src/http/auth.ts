import type { FastifyReply, FastifyRequest } from "fastify";
import type { AccessClaims, TokenService } from "../accounts/tokens.js";
import { VericodeError } from "../errors.js";

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
