/**
 * Small parsers that turn one environment variable's text into its value. Each one either answers the value
 * or an `Invalid` holding one readable message per problem, naming the variable and what is allowed.
 */

/** What a parser answers for text it cannot accept. */
export class Invalid {
  constructor(readonly problems: readonly string[]) {}
}

/** Reads a variable's text (already trimmed, never blank) into its value. */
export type Parser<T> = (raw: string, name: string) => T | Invalid;

/** At most `limit` per `windowMs`; null turns the rule off. */
export interface RateRule {
  limit: number;
  windowMs: number;
}

export const invalid = (problem: string): Invalid => new Invalid([problem]);

const quote = (raw: string): string => JSON.stringify(raw);

/** Any text, as given. */
export const text: Parser<string> = (raw) => raw;

/** The text when `test` accepts it; otherwise `problem(name, raw)` says what is wrong. */
export function checked(test: RegExp | ((raw: string) => boolean), problem: (name: string, raw: string) => string): Parser<string> {
  const accepts = typeof test === "function" ? test : (raw: string) => test.test(raw);
  return (raw, name) => (accepts(raw) ? raw : invalid(problem(name, raw)));
}

/** Rewrites the text (its case, trailing slashes) before `parser` reads it; messages quote the rewritten text. */
export function rewritten<T>(rewrite: (raw: string) => string, parser: Parser<T>): Parser<T> {
  return (raw, name) => parser(rewrite(raw), name);
}

/** A whole number from `min` to `max`. */
export function integer(min: number, max: number): Parser<number> {
  return (raw, name) =>
    /^\d+$/.test(raw) && Number(raw) >= min && Number(raw) <= max
      ? Number(raw)
      : invalid(`${name}=${quote(raw)} is not allowed: expected a whole number from ${min} to ${max}.`);
}

/** `true` or `false`. */
export const boolean: Parser<boolean> = (raw, name) =>
  raw === "true" || raw === "false" ? raw === "true" : invalid(`${name}=${quote(raw)} is not allowed: use true or false.`);

/** One of `values`; `what` completes "… is not" in the message, e.g. "a level: use one of info, debug". */
export function oneOf<const V extends string>(values: readonly V[], what: string): Parser<V> {
  return (raw, name) => ((values as readonly string[]).includes(raw) ? (raw as V) : invalid(`${name}=${quote(raw)} is not ${what}.`));
}

/** An http: or https: URL. */
export const httpUrl: Parser<string> = checked(isHttpUrl, (name, raw) => `${name}=${quote(raw)} is not an http(s) URL.`);

/** `https://example.com/` → `https://example.com`, so that paths can be appended. */
export const withoutTrailingSlashes = (raw: string): string => raw.replace(/\/+$/, "");

export function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90`, `30s`, `10m`, `1h`, `1d` → milliseconds, or null. */
export function parseDuration(raw: string): number | null {
  const match = /^(\d+)([smhd]?)$/.exec(raw.trim());
  if (match === null) return null;
  const ms = Number(match[1]) * (UNITS[match[2] || "s"] ?? 1000);
  return ms > 0 ? ms : null;
}

/** `10/1h` → {limit 10, window 1 h}; `off` → null; anything else → undefined. */
export function parseRate(raw: string): RateRule | null | undefined {
  if (raw.trim().toLowerCase() === "off") return null;
  const [count, window] = raw.split("/");
  if (count === undefined || window === undefined || !/^\d+$/.test(count.trim()) || Number(count) < 1) return undefined;
  const windowMs = parseDuration(window);
  return windowMs === null ? undefined : { limit: Number(count), windowMs };
}

/** A duration in milliseconds, written as seconds or with a unit (`30s`, `10m`, `1h`, `1d`). */
export const duration: Parser<number> = (raw, name) =>
  parseDuration(raw) ?? invalid(`${name}=${quote(raw)} is not a duration: expected seconds or a number with s, m, h or d (30m).`);

/** A rate rule, `<count>/<window>` such as `10/1h`, or `off` (null). */
export const rate: Parser<RateRule | null> = (raw, name) => {
  const rule = parseRate(raw);
  return rule === undefined
    ? invalid(`${name}=${quote(raw)} is not allowed: expected <count>/<window> such as 10/1h (s, m, h, d) or off.`)
    : rule;
};

/** One entry of a list, checked by `test`; `what` completes `NAME entry "…"` in the message. */
export function entry(test: RegExp | ((raw: string) => boolean), what: string): Parser<string> {
  return checked(test, (name, raw) => `${name} entry ${quote(raw)} ${what}`);
}

export interface ListOptions {
  /** @default "," */
  separator?: string;
  /** Hand blank entries to the item parser instead of skipping them (`whatsapp::sms` names the blank one). @default false */
  keepBlank?: boolean;
}

/** A list of entries, each read by `item` after trimming; one message per bad entry. */
export function list<T>(item: Parser<T>, options: ListOptions = {}): Parser<T[]> {
  const { separator = ",", keepBlank = false } = options;
  return (raw, name) => {
    const values: T[] = [];
    const problems: string[] = [];
    for (const part of raw.split(separator).map((piece) => piece.trim())) {
      if (part === "" && !keepBlank) continue;
      const value = item(part, name);
      if (value instanceof Invalid) problems.push(...value.problems);
      else values.push(value);
    }
    return problems.length > 0 ? new Invalid(problems) : values;
  };
}
