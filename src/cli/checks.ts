import type { VericodeError } from "../errors.js";
import { checkString, validationError } from "../field-errors.js";
import { SendOtpBody, VerifyOtpBody } from "../http/schemas.js";

/**
 * The checks the API makes of a send's or a verification's fields before it does anything, made of the
 * CLI's arguments with the API's own rules and words (the request schemas of src/http/schemas.ts, read
 * by the validation catalogue of src/field-errors.ts), so that the CLI refuses what the API refuses, with
 * the same validation_error, before a send or a try is spent.
 */

/**
 * A code as verify-otp takes it (`otp_code`), or the validation_error the API answers for it. Checked
 * before the try: the API refuses `12ab` without counting it, so the CLI must not count it either.
 */
export function checkCode(code: string): VericodeError | null {
  const error = checkString("otp_code", VerifyOtpBody.properties.otp_code, code);
  return error === null ? null : validationError([error]);
}

/**
 * A send's options as send-otp takes them (`locale`, and `channel` when given), or the one
 * validation_error the API answers for them, naming each invalid one.
 */
export function checkSend(options: { locale?: string | undefined; channel?: string | undefined }): VericodeError | null {
  const { properties } = SendOtpBody;
  const errors = [
    options.channel === undefined ? null : checkString("channel", properties.channel, options.channel),
    options.locale === undefined ? null : checkString("locale", properties.locale, options.locale),
  ].filter((error) => error !== null);
  return errors.length === 0 ? null : validationError(errors);
}

/** A message's language as send-otp takes it (`locale`), or the validation_error the API answers for it. */
export function checkLocale(locale: string | undefined): VericodeError | null {
  return checkSend({ locale });
}
