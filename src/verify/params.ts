import { invalidParameter } from "./errors.js";

/** Twilio's form parameters: a name, its values in order (a repeated key is an array). No prototype. */
export type Params = Readonly<Record<string, string | readonly string[]>>;

/** Reads a form body (or a query string) into Twilio's parameters; `__proto__` is a name like any other. */
export function formParams(text: string): Params {
  const params: Record<string, string | string[]> = Object.create(null);
  for (const [name, value] of new URLSearchParams(text)) {
    const held = params[name];
    params[name] = held === undefined ? value : Array.isArray(held) ? [...held, value] : [held, value];
  }
  return params;
}

/** The last value given for `name`, or undefined. */
export function param(params: Params, name: string): string | undefined {
  if (!Object.hasOwn(params, name)) return undefined;
  const value = params[name];
  return typeof value === "string" ? value : value?.[value.length - 1];
}

export function booleanParam(params: Params, name: string): boolean | undefined {
  const value = param(params, name);
  if (value === undefined) return undefined;
  const lower = value.toLowerCase();
  if (lower === "true") return true;
  if (lower === "false") return false;
  throw invalidParameter(name, `${name} must be true or false.`);
}

export function integerParam(params: Params, name: string, min: number, max: number): number | undefined {
  const value = param(params, name);
  if (value === undefined) return undefined;
  const n = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
  if (!(n >= min && n <= max)) throw invalidParameter(name, `${name} must be a whole number from ${min} to ${max}.`);
  return n;
}

/** A JSON-valued parameter (`RateLimits`, `ChannelConfiguration`, `Tags`): an object. */
export function objectParam(params: Params, name: string): Record<string, unknown> | undefined {
  const value = param(params, name);
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw invalidParameter(name, `${name} must be a JSON object.`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw invalidParameter(name, `${name} must be a JSON object.`);
  return parsed as Record<string, unknown>;
}

/** Page and PageSize of a list request (Twilio's: 50 by default, at most 1000; pages count from 0). */
export function pageOf(query: Params): { page: number; size: number } {
  const size = integerParam(query, "PageSize", 1, 1000) ?? 50;
  const page = integerParam(query, "Page", 0, 1_000_000) ?? 0;
  return { page, size };
}
