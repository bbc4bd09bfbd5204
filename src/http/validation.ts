import type { FastifyInstance, FastifyRequest } from "fastify";
import type { CountryCode } from "libphonenumber-js/max";
import { type FieldError, VericodeError } from "../errors.js";
import { FIELD, type FieldErrorCode, type FieldSchema, fieldError, validationError } from "../field-errors.js";
import { invalidPhoneField, invalidPhoneMessage, parsePhone } from "../phone.js";
import type { Vericode } from "../vericode.js";

/** One error as Ajv reports it. */
export interface AjvError {
  instancePath?: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** Ajv's keywords, as the stable codes of errors[]. */
const CODES: Record<string, FieldErrorCode> = {
  required: "required",
  additionalProperties: "unknown_field",
  minLength: "too_short",
  maxLength: "too_long",
  pattern: "invalid_format",
  format: "invalid_format",
  enum: "not_allowed_value",
  const: "not_allowed_value",
  anyOf: "not_allowed_value",
  type: "invalid_type",
};

/** The request's parts in the order Fastify validates them: the schema's key, the request's member, the name a field error gives the whole. */
const PARTS = [
  ["params", "params", "params"],
  ["body", "body", "body"],
  ["querystring", "query", "query"],
  ["headers", "headers", "headers"],
] as const;

/** The schema of the value at a path of the part's schema (`["a", "b"]`), or undefined when it has none. */
function schemaAt(root: FieldSchema | undefined, path: string[]): FieldSchema | undefined {
  let schema = root;
  for (const name of path) schema = schema?.properties?.[name] ?? schema?.items;
  return schema;
}

/**
 * Ajv's errors for one part of a request as field errors in the catalogue's words, from the part's
 * schema (`part` names the whole: `body`, `query`). Without a schema the words are the keywords' alone.
 */
export function translateAjvErrors(errors: readonly AjvError[], root: FieldSchema | undefined, part: string): FieldError[] {
  return errors.map((error) => {
    const path = (error.instancePath ?? "").split("/").slice(1);
    const schema = schemaAt(root, path) ?? {};
    const code = CODES[error.keyword] ?? "invalid_format";
    if (error.keyword === "required" || error.keyword === "additionalProperties") {
      const name = String(error.params.missingProperty ?? error.params.additionalProperty ?? "");
      const fields = Object.keys(schema.properties ?? {});
      return fieldError([...path, name].join("."), code, schema.properties?.[name] ?? {}, { fields });
    }
    return fieldError(path.length === 0 ? part : path.join("."), code, schema);
  });
}

/** The phone numbers' field errors, told apart from the schema's: one alone answers invalid_phone_number. */
const PHONE_ERRORS = new WeakSet<FieldError>();

/** What checkPart needs of a part's schema, read once per schema rather than on every request. */
interface PartPlan {
  /** The part's fields, in the schema's order. */
  names: readonly string[];
  /** Its phone number fields, with their maxLength. */
  phones: readonly { name: string; maxLength: number }[];
}

const PLANS = new WeakMap<FieldSchema, PartPlan>();

function planOf(schema: FieldSchema): PartPlan {
  let plan = PLANS.get(schema);
  if (plan === undefined) {
    const fields = Object.entries(schema.properties ?? {});
    plan = {
      names: fields.map(([name]) => name),
      phones: fields
        .filter(([, field]) => field[FIELD]?.phone === true)
        .map(([name, field]) => ({ name, maxLength: field.maxLength ?? Number.POSITIVE_INFINITY })),
    };
    PLANS.set(schema, plan);
  }
  return plan;
}

/** At most `max` characters (code points): a string is never longer in code points than in UTF-16 units. */
function withinLength(text: string, max: number): boolean {
  return text.length <= max || [...text].length <= max;
}

/** The checks JSON Schema cannot make, on one part: phone numbers as libphonenumber reads them, and the object's own rules. */
function checkPart(schema: FieldSchema, value: unknown, now: number, defaultCountry: CountryCode | null): FieldError[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [];
  const object = value as Record<string, unknown>;
  const found: FieldError[] = [];
  for (const { name, maxLength } of planOf(schema).phones) {
    const given = object[name];
    const bounded = typeof given === "string" && given !== "" && withinLength(given, maxLength);
    if (bounded && parsePhone(given, defaultCountry) === null) {
      const error = invalidPhoneField(name);
      PHONE_ERRORS.add(error);
      found.push(error);
    }
  }
  const check = schema[FIELD]?.check;
  if (check !== undefined) found.push(...check(object, { now }));
  return found;
}

/**
 * Every invalid field of the request, in the order its schema lists them: the schema's errors (Ajv runs
 * with allErrors; each part is validated again here, since Fastify stops at the first part that fails)
 * and the checks JSON Schema cannot make. One error per field, the schema's first.
 */
export function requestFieldErrors(request: FastifyRequest, defaultCountry: CountryCode | null, now: number): FieldError[] {
  const schemas = (request.routeOptions.schema ?? {}) as Record<string, FieldSchema | undefined>;
  const found: FieldError[] = [];
  const order: string[] = [];
  for (const [part, member, name] of PARTS) {
    const schema = schemas[part];
    if (schema === undefined) continue;
    const value: unknown = request[member];
    order.push(...planOf(schema).names);
    if (request.validationError !== undefined) {
      const validate = request.getValidationFunction(part);
      if (validate !== undefined && !validate(value ?? null))
        found.push(...translateAjvErrors((validate.errors ?? []) as AjvError[], schema, name));
    }
    found.push(...checkPart(schema, value, now, defaultCountry));
  }
  // A valid request (nearly every one) stops here.
  if (found.length === 0) return found;
  const seen = new Set<string>();
  const rank = (field: string) => {
    const index = order.indexOf(field.split(".")[0] as string);
    return index === -1 ? order.length : index;
  };
  return found.filter((error) => !seen.has(error.field) && seen.add(error.field)).sort((a, b) => rank(a.field) - rank(b.field));
}

/**
 * The problem for a request's invalid fields: a number alone that is not one is invalid_phone_number,
 * with send-otp's detail and its hint; anything else is one validation_error naming every field.
 */
export function fieldsProblem(request: FastifyRequest, errors: FieldError[]): VericodeError {
  const [only] = errors;
  const given =
    errors.length === 1 && only !== undefined && PHONE_ERRORS.has(only) ? (request.body as Record<string, unknown>)[only.field] : null;
  if (typeof given === "string") {
    return new VericodeError("invalid_phone_number", invalidPhoneMessage(given), { extra: { errors } });
  }
  return validationError(errors);
}

/**
 * Makes the routes this plugin registers after the call answer every invalid field at once, in the
 * catalogue's words: Fastify attaches its validation error to the request instead of answering it, and a
 * first pre-handler (before authentication, as validation came before it) answers every field error.
 */
export function answerEveryField(app: FastifyInstance, vericode: Vericode): void {
  app.addHook("onRoute", (route) => {
    route.attachValidation = true;
  });
  app.addHook("preHandler", async (request) => {
    const errors = requestFieldErrors(request, vericode.config.defaultCountry, vericode.clock.now().getTime());
    if (errors.length > 0) throw fieldsProblem(request, errors);
    // Never reached while every Ajv error becomes a field error; a request that failed validation never passes.
    if (request.validationError !== undefined) {
      throw validationError([
        { field: request.validationError.validationContext ?? "body", code: "invalid_format", message: "is not valid" },
      ]);
    }
  });
}
