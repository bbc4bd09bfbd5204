import { VericodeError } from "../errors.js";
import { SendOtpBody, VerifyOtpBody } from "../http/schemas.js";

/**
 * The checks the API makes of a send's or a verification's fields before it does anything, made of the
 * CLI's arguments with the API's own rules (the request schemas of src/http/schemas.ts), so that the CLI
 * refuses what the API refuses, with a validation_error, before a send or a try is spent.
 */

/** A string field's rule, as the request schemas write it. */
interface StringRule {
  pattern?: string;
  minLength?: number;
  maxLength?: number;
}

/** The string keywords the request schemas use, read as the API's validator (Ajv) reads them. */
function satisfies(rule: StringRule, value: string): boolean {
  // Ajv counts lengths in code points and compiles a pattern as a Unicode regular expression.
  const length = [...value].length;
  if (rule.minLength !== undefined && length < rule.minLength) return false;
  if (rule.maxLength !== undefined && length > rule.maxLength) return false;
  return rule.pattern === undefined || new RegExp(rule.pattern, "u").test(value);
}

function invalid(detail: string, field: string, message: string): VericodeError {
  return new VericodeError("validation_error", detail, { extra: { errors: [{ field, message }] } });
}

/**
 * A code as verify-otp takes it (`otp_code`), or the validation_error the API answers for it. Checked
 * before the try: the API refuses `12ab` without counting it, so the CLI must not count it either.
 */
export function checkCode(code: string): VericodeError | null {
  if (satisfies(VerifyOtpBody.properties.otp_code, code)) return null;
  return invalid("The code is not valid.", "otp_code", "must be 4 to 10 digits");
}

/** A message's language as send-otp takes it (`locale`), or the validation_error the API answers for it. */
export function checkLocale(locale: string | undefined): VericodeError | null {
  if (locale === undefined || satisfies(SendOtpBody.properties.locale, locale)) return null;
  return invalid("The locale is not valid.", "locale", "must be a language tag such as es, en or pt-BR (BCP 47)");
}
