import { type CountryCode, parsePhoneNumberFromString } from "libphonenumber-js/max";

/**
 * Reads a phone number written by a person (E.164, or national format when a default country is given)
 * and answers its E.164 form, or null when it is not a valid number. Uses Google's full metadata, so
 * Twilio's test numbers (+1 500 555 …) count as valid, as they are.
 */
export function normalisePhone(input: string, defaultCountry: CountryCode | null): string | null {
  if (input.length > 32) return null;
  const parsed = parsePhoneNumberFromString(input, defaultCountry ?? undefined);
  if (parsed === undefined || !parsed.isValid()) return null;
  return parsed.number;
}

/** The last four digits only, for logs and audit lines. */
export function maskPhone(e164: string): string {
  return `${"*".repeat(Math.max(0, e164.length - 4))}${e164.slice(-4)}`;
}
