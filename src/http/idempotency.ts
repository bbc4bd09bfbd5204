import { createHash } from "node:crypto";
import { Type } from "@sinclair/typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { failClosed, VericodeError } from "../errors.js";
import { FIELD } from "../field-errors.js";
import type { IdempotentRequest } from "../store/store.js";
import type { Vericode } from "../vericode.js";

/** How long a key answers its retries (IETF draft-ietf-httpapi-idempotency-key-header; Stripe keeps 24 h too). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** A key whose request died in flight is free again after this: well past a send's 10 s deadline. */
const LEASE_MS = 60_000;

declare module "fastify" {
  interface FastifyRequest {
    /** The Idempotency-Key this request claimed, to keep or free its answer. */
    idempotency?: IdempotentRequest;
  }
}

/** The optional header, as the OpenAPI document and the validation see it: 1 to 255 printable characters. */
export const IdempotencyHeaders = Type.Object({
  "idempotency-key": Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: "^[\\x20-\\x7E]+$",
      [FIELD]: { rule: "1 to 255 printable ASCII characters" },
      description:
        "Makes the request safe to retry: a retry with the same key within 24 hours answers the first answer again (header `Idempotent-Replayed: true`) and sends nothing twice; the same key with another body is 422 idempotency_key_reused; while the first is still running, 409 idempotency_key_in_use.",
    }),
  ),
});

const guard = failClosed("database");

/**
 * The hooks that make a route honour Idempotency-Key. `scopeOf` says whose key it is (the token's
 * subject, or the client's address): one caller's key never answers for another.
 */
export function idempotent(vericode: Vericode, route: string, scopeOf: (request: FastifyRequest) => string) {
  const store = vericode.store;
  return {
    async preHandler(request: FastifyRequest, reply: FastifyReply): Promise<void> {
      const key = request.headers["idempotency-key"];
      if (typeof key !== "string") return;
      const claim: IdempotentRequest = { scope: `${route}|${scopeOf(request)}`, key, fingerprint: fingerprint(request.body) };
      const now = vericode.clock.now().getTime();
      const held = await guard(store.claimIdempotencyKey(claim, now, { ttlMs: IDEMPOTENCY_TTL_MS, leaseMs: LEASE_MS }));
      switch (held.kind) {
        case "claimed":
          request.idempotency = claim;
          return;
        case "done":
          await reply
            .code(held.answer.status)
            .header("content-type", held.answer.contentType)
            .header("idempotent-replayed", "true")
            .send(held.answer.body);
          return;
        case "in_flight":
          throw new VericodeError(
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still running. Retry it once it has answered.",
            {
              retryAfter: 1,
            },
          );
        case "mismatch":
          throw new VericodeError(
            "idempotency_key_reused",
            "This Idempotency-Key was used for a request with another body. Use a new key for a new request.",
          );
      }
    },

    /** Keeps the answer for the retries; frees the key when there is nothing worth replaying (429, 5xx). */
    async onSend(request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
      const claim = request.idempotency;
      if (claim === undefined) return payload;
      request.idempotency = undefined;
      const status = reply.statusCode;
      const contentType = String(reply.getHeader("content-type") ?? "application/json");
      if (typeof payload === "string" && status < 500 && status !== 429) {
        await guard(store.completeIdempotencyKey(claim, { status, contentType, body: payload }));
      } else {
        await guard(store.releaseIdempotencyKey(claim));
      }
      return payload;
    },
  };
}

/** The body's digest, its fields in a fixed order: the same request written twice gives the same one. */
function fingerprint(body: unknown): string {
  const fields = typeof body === "object" && body !== null ? Object.entries(body).sort(([a], [b]) => (a < b ? -1 : 1)) : body;
  return createHash("sha256")
    .update(JSON.stringify(fields ?? null))
    .digest("hex");
}
