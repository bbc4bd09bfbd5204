import { type CountryCode, type NumberType, type PhoneNumber, parsePhoneNumberFromString } from "libphonenumber-js/max";
import type { FieldError } from "./errors.js";
import { FIELD, fieldError } from "./field-errors.js";

/** A valid number, read once: its E.164 form, its country, and (computed when first asked) its type. */
export interface PhoneInfo {
  readonly e164: string;
  /** ISO 3166-1 alpha-2; undefined for non-geographic numbers (+800 …). */
  readonly country: CountryCode | undefined;
  /** The calling code without `+` (`506`, `1`). */
  readonly callingCode: string;
  /** libphonenumber's type: MOBILE, FIXED_LINE, PREMIUM_RATE…; undefined when the metadata cannot tell. */
  readonly type: NumberType;
}

/**
 * What a valid number is kept as: its E.164 form, its country and calling code (strings shared by every
 * number of that country), and its type. The type is read from the same parse, at once: about 1 µs, where
 * reading it later meant parsing the number again (about 6 µs), and the send's number-type rule asks for it.
 */
class ParsedPhone implements PhoneInfo {
  readonly e164: string;
  readonly country: CountryCode | undefined;
  readonly callingCode: string;
  readonly type: NumberType;

  constructor(parsed: PhoneNumber, input: string) {
    // The input itself when it was written in E.164: one string kept instead of two.
    this.e164 = parsed.number === input ? input : parsed.number;
    this.country = parsed.country;
    this.callingCode = sharedCallingCode(parsed.countryCallingCode);
    this.type = parsed.getType();
  }
}

/** One string per calling code, for every number kept (a parse makes a new one each time). */
const CALLING_CODES = new Map<string, string>();

function sharedCallingCode(code: string): string {
  const shared = CALLING_CODES.get(code);
  if (shared !== undefined) return shared;
  // Calling codes are a few hundred at most; anything beyond is not kept (it cannot happen with valid numbers).
  if (CALLING_CODES.size < 1000) CALLING_CODES.set(code, code);
  return code;
}

/**
 * Parsing with the full metadata costs about 7 µs (and 8 with the type); a verification follows a send of the same
 * number within minutes, so the last numbers read are kept (least recently used first out). An entry is
 * about 130 bytes (measured: 129 in V8's heap, was 184 with the type read later in a box of its own): 100,000
 * of them, some 13 MB, cover the last 100,000 numbers sent to.
 */
const CACHE_SIZE = 100_000;
/**
 * The numbers read, least recently used first: a Map keeps its insertion order, so a number read again
 * moves to the end (deleted, then set again) and the first key is the one to forget. An invalid number
 * is kept as null. (lru-cache did the same with arrays and typed arrays of CACHE_SIZE allocated at start:
 * 2.8 MB measured, whether used or not; per entry the two cost the same.)
 */
const cache = new Map<string, PhoneInfo | null>();

/** Forgets every number read, so that a test starts from an empty cache. */
export function clearPhoneCache(): void {
  cache.clear();
}

/**
 * Reads a phone number written by a person (E.164, or national format when a default country is given),
 * or answers null when it is not a valid number. Uses Google's full metadata, so Twilio's test numbers
 * (+1 500 555 …) count as valid, as they are.
 */
export function parsePhone(input: string, defaultCountry: CountryCode | null): PhoneInfo | null {
  if (input.length > 32) return null;
  const key = defaultCountry === null ? input : `${defaultCountry}:${input}`;
  const cached = cache.get(key);
  if (cached !== undefined) {
    cache.delete(key);
    cache.set(key, cached);
    return cached;
  }
  const parsed = parsePhoneNumberFromString(input, defaultCountry ?? undefined);
  const info = parsed === undefined || !parsed.isValid() ? null : new ParsedPhone(parsed, input);
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(key, info);
  return info;
}

/** The E.164 form of a number written by a person, or null when it is not valid (see parsePhone). */
export function normalisePhone(input: string, defaultCountry: CountryCode | null): string | null {
  return parsePhone(input, defaultCountry)?.e164 ?? null;
}

/** The last four digits only, for logs and audit lines. */
export function maskPhone(e164: string): string {
  return `${"*".repeat(Math.max(0, e164.length - 4))}${e164.slice(-4)}`;
}

/** What a phone number field takes, in words: the hint of every refusal of a number, by the API and the CLI. */
export const PHONE_RULE = "a phone number in international format, such as +50688887777";

/** The field error of a number that is not one, as every route and the CLI answer it. */
export function invalidPhoneField(field: string): FieldError {
  return fieldError(field, "invalid_format", { [FIELD]: { rule: PHONE_RULE } });
}

/** The detail of an invalid_phone_number: what was given (its first 40 characters) and the format to use. */
export function invalidPhoneMessage(input: string): string {
  return `${JSON.stringify(input.slice(0, 40))} is not a valid phone number. Use the international format, for example +50688887777.`;
}
