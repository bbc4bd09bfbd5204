import {
  type CountryCode,
  type NumberType,
  type PhoneNumber,
  parsePhoneNumberFromString,
  validatePhoneNumberLength,
} from "libphonenumber-js/max";
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

/** A valid number, as parsePhone answers it. */
class ParsedPhone implements PhoneInfo {
  constructor(
    readonly e164: string,
    readonly country: CountryCode | undefined,
    readonly callingCode: string,
    readonly type: NumberType,
  ) {}
}

/**
 * What a number has besides its E.164 form: its country, calling code and type. Numbers have a few
 * hundred such kinds between them (`CR 506 MOBILE`), each kept once, by its index in KINDS.
 */
interface Kind {
  country: CountryCode | undefined;
  callingCode: string;
  type: NumberType;
}

const KINDS: Kind[] = [];
const KIND_INDEX = new Map<string, number>();
/** Kinds kept at most: there are far fewer (about 250 calling codes, a dozen types); past it, numbers are kept whole. */
const KINDS_MAX = 10_000;

/** The index of the number's kind in KINDS, or -1 when KINDS is full. */
function kindOf(parsed: PhoneNumber): number {
  const country = parsed.country;
  const type = parsed.getType();
  const name = `${country ?? ""} ${parsed.countryCallingCode} ${type ?? ""}`;
  let index = KIND_INDEX.get(name);
  if (index === undefined) {
    if (KINDS.length >= KINDS_MAX) return -1;
    index = KINDS.push({ country, callingCode: parsed.countryCallingCode, type }) - 1;
    KIND_INDEX.set(name, index);
  }
  return index;
}

/**
 * Parsing with the full metadata costs about 7 µs, 8 with the type; a verification follows a send of the
 * same number within minutes, so the numbers read last are kept. A number written in E.164, the usual
 * case, is kept as its text (the key) and the index of its kind: about 70 bytes (measured: 72; 184 as an
 * object with strings of its own and its type read later, in a box of its own).
 *
 * Two generations of GENERATION numbers each: numbers go into the young one; when it is full it becomes
 * the old one and the old one is dropped whole. So the last 50,000 to 100,000 numbers read are kept, in
 * tables that never hold deleted entries: a Map that forgets one key per new one (least recently used
 * first, as lru-cache did) leaves a hole per key, and V8 keeps such a table at twice its size, 7 MB for
 * 100,000 numbers, plus a copy while it compacts it. Two tables of 50,000: 1.8 MB each.
 */
const GENERATION = 50_000;
/** Numbers read, by their key: a kind's index (a number in E.164), a PhoneInfo (any other form), null (not a number). */
type Kept = number | PhoneInfo | null;
let young = new Map<string, Kept>();
let old = new Map<string, Kept>();

/** Forgets every number read, so that a test starts from an empty cache. */
export function clearPhoneCache(): void {
  young = new Map();
  old = new Map();
}

function remember(key: string, kept: Kept): void {
  if (young.size >= GENERATION) {
    old = young;
    young = new Map();
  }
  young.set(key, kept);
}

/** A kept number as PhoneInfo (a number is kept as its kind's index when `key` is its E.164 form). */
function phoneInfo(key: string, kept: Kept): PhoneInfo | null {
  if (typeof kept !== "number") return kept;
  const kind = KINDS[kept] as Kind;
  return new ParsedPhone(key, kind.country, kind.callingCode, kind.type);
}

/**
 * Reads a phone number written by a person (E.164, or national format when a default country is given),
 * or answers null when it is not a valid number. Uses Google's full metadata, so Twilio's test numbers
 * (+1 500 555 …) count as valid, as they are. The type is read from the same parse, at once (about 1 µs;
 * reading it later meant parsing the number again): the send's number-type rule asks for it.
 */
export function parsePhone(input: string, defaultCountry: CountryCode | null): PhoneInfo | null {
  if (input.length > 32) return null;
  const key = defaultCountry === null ? input : `${defaultCountry}:${input}`;
  let kept = young.get(key);
  if (kept === undefined) kept = old.get(key);
  if (kept !== undefined) return phoneInfo(key, kept);
  const parsed = parsePhoneNumberFromString(input, defaultCountry ?? undefined);
  kept = null;
  if (parsed?.isValid()) {
    const kind = parsed.number === key ? kindOf(parsed) : -1;
    kept = kind === -1 ? new ParsedPhone(parsed.number, parsed.country, parsed.countryCallingCode, parsed.getType()) : kind;
  }
  remember(key, kept);
  return phoneInfo(key, kept);
}

/**
 * Why a number written in E.164 form (`+`, then up to 15 digits; spaces, dots, dashes and brackets
 * allowed) is not a valid number, in words for a person: too short or too long for its country calling
 * code, or in no range of its numbering plan (`+447700900111`, a range the UK keeps for fiction). Null
 * when the input is not in E.164 form at all: then the format is what to explain.
 */
export function invalidNumberReason(input: string): string | null {
  const compact = input.replace(/[\s().-]/g, "");
  if (!/^\+[1-9]\d{1,14}$/.test(compact)) return null;
  const parsed = parsePhoneNumberFromString(compact);
  const code = parsed === undefined ? null : `+${parsed.countryCallingCode}`;
  switch (code === null ? "INVALID_COUNTRY" : validatePhoneNumberLength(compact)) {
    case "INVALID_COUNTRY":
      return "it begins with no country calling code";
    case "TOO_SHORT":
      return `it is too short for a ${code} number`;
    case "TOO_LONG":
      return `it is too long for a ${code} number`;
    case "INVALID_LENGTH":
      return `no ${code} number has ${parsed?.nationalNumber.length} digits after the country code`;
    default:
      return `it is in no range of the ${code} numbering plan (libphonenumber's metadata)`;
  }
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
