import { ConfigError, type FieldError, VericodeError } from "../errors.js";

/**
 * What a failed command prints after `vericode: `: one line, no stack, saying what went wrong and, where it
 * helps, what to do.
 */
export function errorLine(error: unknown): string {
  if (error instanceof ConfigError) return `invalid configuration: ${error.problems.join(" ")}`;
  if (error instanceof VericodeError) return `${error.code}: ${problemText(error)}`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * What the API's problem for this error says: its detail, then each field error with its hint
 * (`since is not valid: use a duration such as 90m, 24h, 7d or 2w.`) that the detail does not already
 * say (a validation_error's detail says them all: src/field-errors.ts).
 */
export function problemText(error: VericodeError): string {
  const said = fieldErrors(error.extra.errors)
    .map(({ field, message }) => `${field} ${message}`)
    .filter((text) => !error.message.includes(text));
  return [error.message, ...said.map((text) => `${text}.`)].join(" ");
}

function fieldErrors(value: unknown): FieldError[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (item): item is FieldError =>
      typeof item === "object" && item !== null && typeof item.field === "string" && typeof item.message === "string",
  );
}
