import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { BearerError } from "../accounts/tokens.js";
import { ERROR_CATALOG, type ErrorCode, type FieldError, VericodeError } from "../errors.js";
import { validationError } from "../field-errors.js";
import { type AjvError, translateAjvErrors } from "./validation.js";

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  /** The seed's `(success, message)` pair, kept for its clients. */
  success: false;
  message: string;
  request_id: string;
  [extra: string]: unknown;
}

/** Answers an error as application/problem+json (RFC 9457). Never includes a stack or an internal message. */
export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: VericodeError): FastifyReply {
  const problem: Problem = {
    type: `/problems/${error.code}`,
    title: ERROR_CATALOG[error.code].title,
    status: error.status,
    detail: error.message,
    code: error.code,
    success: false,
    message: error.message,
    request_id: request.id,
  };
  for (const [name, value] of Object.entries(error.extra)) if (!(name in problem)) problem[name] = value;
  if (error.retryAfter !== undefined) reply.header("retry-after", String(Math.max(1, Math.ceil(error.retryAfter))));
  if (error.code === "unauthorized") reply.header("www-authenticate", bearerChallenge(error));
  return reply.code(error.status).type("application/problem+json").serializer(JSON.stringify).send(problem);
}

/**
 * The `WWW-Authenticate` challenge of a 401 (RFC 6750 §3): the realm, and for a refused bearer token or
 * header its error code and the reason. No error code when the request carried no bearer credential.
 */
function bearerChallenge(error: VericodeError): string {
  if (!(error instanceof BearerError)) return 'Bearer realm="vericode"';
  // error_description allows printable ASCII but `"` and `\` (RFC 6750 §3): quotes become apostrophes.
  const description = error.message.replaceAll('"', "'").replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, "");
  return `Bearer realm="vericode", error="${error.bearerError}", error_description="${description}"`;
}

/**
 * Turns whatever was thrown into a known problem: our own errors as they are, Fastify's request
 * errors (validation, media type, size, JSON) by their code, and anything else as internal_error.
 */
export function toVericodeError(error: FastifyError | VericodeError | Error): VericodeError {
  if (error instanceof VericodeError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.validation !== undefined) {
    // A route outside answerEveryField (its schema unknown here): the keywords' words alone.
    return validationError(
      dedupe(translateAjvErrors(fastifyError.validation as AjvError[], undefined, fastifyError.validationContext ?? "body")),
    );
  }
  switch (fastifyError.code) {
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new VericodeError("unsupported_media_type", "Send the body as JSON, with Content-Type: application/json.");
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new VericodeError("payload_too_large", "The request body is too large (at most 16 KiB).");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return validationError([{ field: "body", code: "required", message: "is empty: send a JSON object" }]);
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return validationError([
        { field: "body", code: "invalid_format", message: "does not match its Content-Length header: send it whole" },
      ]);
    default:
      break;
  }
  if (fastifyError.statusCode === 400 && (error instanceof SyntaxError || fastifyError.code === "FST_ERR_CTP_INVALID_JSON_BODY")) {
    return validationError([{ field: "body", code: "invalid_format", message: "is not valid JSON: check its quotes, commas and braces" }]);
  }
  if (fastifyError.statusCode === 404) return new VericodeError("not_found", "There is nothing at this address.");
  if (fastifyError.statusCode === 413) return new VericodeError("payload_too_large", "The request body is too large.");
  if (fastifyError.statusCode === 415) return new VericodeError("unsupported_media_type", "Send the body as JSON.");
  if (fastifyError.statusCode !== undefined && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    return new VericodeError("validation_error", "The request is not valid.", { extra: { errors: [] } });
  }
  return new VericodeError("internal_error", "Something went wrong on our side. The request id identifies it in our logs.");
}

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => !seen.has(e.field) && seen.add(e.field));
}
