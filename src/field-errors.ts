import type {} from "@sinclair/typebox";
import { type FieldError, VericodeError } from "./errors.js";

/**
 * The validation message catalogue: what a field error says, made of the field's own rule (its JSON
 * Schema keywords, or the words declared next to it), so that every field of every route is answered in
 * a person's words: what is wrong, then what to do ("is too short: use 8 to 128 characters"). The HTTP
 * layer translates Ajv's errors with it, the CLI and the report's query build theirs with it: one wording.
 */

/** The stable codes of `errors[].code`, for programs: they never change meaning (docs/errors.md). */
export const FIELD_ERROR_CODES = [
  "required",
  "too_short",
  "too_long",
  "invalid_format",
  "not_allowed_value",
  "unknown_field",
  "invalid_type",
  "conflicting_fields",
  "out_of_range",
  "already_registered",
] as const;
export type FieldErrorCode = (typeof FIELD_ERROR_CODES)[number];

/** The annotation a schema carries under FIELD: words and checks that JSON Schema's keywords cannot say. */
export interface FieldNotes {
  /**
   * What the field takes, as a noun phrase, where its keywords cannot say it in words (a pattern):
   * "3 to 150 characters, only letters, digits and . _ @ + -".
   */
  rule?: string;
  /** A phone number, checked as libphonenumber reads it (with DEFAULT_COUNTRY) along with the schema. */
  phone?: true;
  /**
   * On an object: the rules between its fields (one of two required, not both) and those that need the
   * time, checked with the schema so that one answer names every invalid field.
   */
  check?: (value: Record<string, unknown>, context: CheckContext) => FieldError[];
}

/** What a check may need of the service. */
export interface CheckContext {
  /** The service clock's time, in milliseconds. */
  now: number;
}

/**
 * A symbol, not a keyword: Ajv (strict) and the OpenAPI document never see it, TypeBox keeps it.
 *
 * ```ts
 * const OtpCode = Type.String({ pattern: "^[0-9]{4,10}$", [FIELD]: { rule: "4 to 10 digits" } });
 * ```
 */
export const FIELD: unique symbol = Symbol.for("vericode.field");

declare module "@sinclair/typebox" {
  interface SchemaOptions {
    /** vericode's words and checks for this field or object (src/field-errors.ts). */
    [FIELD]?: FieldNotes;
  }
}

/** The JSON Schema keywords the words are made of. */
export interface FieldSchema {
  type?: unknown;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  enum?: readonly unknown[];
  const?: unknown;
  anyOf?: readonly FieldSchema[];
  properties?: Record<string, FieldSchema>;
  items?: FieldSchema;
  [FIELD]?: FieldNotes;
}

const FORMATS: Record<string, string> = {
  email: "an email address, such as ana@example.com",
  "date-time": "a date and time in ISO 8601, such as 2026-11-01T12:00:00Z",
  date: "a date in ISO 8601, such as 2026-11-01",
};

const TYPES: Record<string, string> = {
  string: "a string (in quotes)",
  integer: "a whole number",
  number: "a number",
  boolean: "true or false",
  object: "a JSON object",
  array: "a list",
  null: "null",
};

/** The values an `enum`, a `const` or an `anyOf` of consts allows; null when the schema lists none. */
export function allowedValues(schema: FieldSchema): readonly unknown[] | null {
  if (schema.enum !== undefined) return schema.enum;
  if ("const" in schema) return [schema.const];
  if (schema.anyOf?.every((branch) => "const" in branch)) return schema.anyOf.map((branch) => branch.const);
  return null;
}

/** Lengths in words: "8 to 128 characters", "up to 254 characters", "at least 1 character"; "" when none. */
export function lengthWords(schema: FieldSchema): string {
  const { minLength: min, maxLength: max } = schema;
  const characters = (n: number) => (n === 1 ? "1 character" : `${n} characters`);
  if (min !== undefined && min > 1 && max !== undefined) return `${min} to ${characters(max)}`;
  if (max !== undefined) return `up to ${characters(max)}`;
  return min === undefined ? "" : `at least ${characters(min)}`;
}

/** What the field takes, in words; "" when its schema says nothing a person needs. */
export function ruleWords(schema: FieldSchema): string {
  const declared = schema[FIELD]?.rule;
  if (declared !== undefined) return declared;
  const values = allowedValues(schema);
  if (values !== null) return `one of ${values.map(String).join(", ")}`;
  if (schema.format !== undefined && FORMATS[schema.format] !== undefined) return FORMATS[schema.format] as string;
  // A pattern nobody put into words: the last resort, and test/http/validation-catalogue.test.ts keeps routes off it.
  if (schema.pattern !== undefined) return `text matching ${schema.pattern}`;
  if (typeof schema.type === "string" && schema.type !== "string") return TYPES[schema.type] ?? "";
  return lengthWords(schema);
}

const use = (rule: string, verb: string) => (rule === "" ? "" : `: ${verb} ${rule}`);

/** The message of one field error: what is wrong, then what to do, from the field's schema. */
export function fieldMessage(code: FieldErrorCode, schema: FieldSchema, options: { fields?: readonly string[] } = {}): string {
  const rule = ruleWords(schema);
  // A pattern's words say its lengths too ("4 to 10 digits"); other fields' lengths are their keywords'.
  const size = schema.pattern !== undefined && schema[FIELD]?.rule !== undefined ? rule : lengthWords(schema);
  switch (code) {
    case "required":
      return `is required${use(rule, "give")}`;
    case "too_short":
      return schema.minLength === 1 ? `is empty${use(rule, "give")}` : `is too short${use(size, "use")}`;
    case "too_long":
      return `is too long${use(size, "use")}`;
    case "not_allowed_value":
      return `is not an allowed value${use(rule, "use")}`;
    case "unknown_field": {
      const fields = options.fields ?? [];
      return fields.length === 0
        ? "is not a field of this request: leave it out"
        : `is not a field of this request: leave it out (the fields are ${fields.join(", ")})`;
    }
    case "invalid_type": {
      const type = typeof schema.type === "string" ? (TYPES[schema.type] ?? schema.type) : "another type";
      return `must be ${type}${schema.type === "string" ? use(rule, "give") : ""}`;
    }
    default:
      return `is not valid${use(rule, "use")}`;
  }
}

/** One field error: the field, its stable code and its message from the catalogue. */
export function fieldError(
  field: string,
  code: FieldErrorCode,
  schema: FieldSchema,
  options: { fields?: readonly string[] } = {},
): FieldError {
  return { field, code, message: fieldMessage(code, schema, options) };
}

/**
 * A string against the string keywords of its schema, as Ajv reads them (lengths in code points, the
 * pattern as a Unicode expression): the field error the API answers for it, or null. For checks made
 * outside a request (the CLI's arguments), so that they refuse what the API refuses, in its words.
 */
export function checkString(field: string, schema: FieldSchema, value: string): FieldError | null {
  const length = [...value].length;
  if (schema.maxLength !== undefined && length > schema.maxLength) return fieldError(field, "too_long", schema);
  if (schema.minLength !== undefined && length < schema.minLength) return fieldError(field, "too_short", schema);
  if (schema.pattern !== undefined && !new RegExp(schema.pattern, "u").test(value)) return fieldError(field, "invalid_format", schema);
  const values = allowedValues(schema);
  if (values !== null && !values.includes(value)) return fieldError(field, "not_allowed_value", schema);
  return null;
}

/**
 * The validation_error for these field errors, its detail a sentence per field: "password is too short:
 * use 8 to 128 characters." For several, "3 fields are not valid." comes first.
 */
export function validationError(errors: FieldError[]): VericodeError {
  const sentences = errors.map(({ field, message }) => `${field} ${message}.`);
  const detail = errors.length === 1 ? sentences.join(" ") : [`${errors.length} fields are not valid.`, ...sentences].join(" ");
  return new VericodeError("validation_error", detail, { extra: { errors } });
}
