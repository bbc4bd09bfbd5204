import { readFileSync } from "node:fs";
import { isSupportedCountry } from "libphonenumber-js/max";
import { normalisePhone } from "../phone.js";
import { DEFAULT_SMS_PRICES_USD, usdToMicros } from "./prices.js";

/** At most `limit` per `windowMs`; null turns the rule off. */
export interface RateRule {
  limit: number;
  windowMs: number;
}

export type BudgetPeriod = "day" | "month" | "total";

/** Everything the protection rules read from the environment, resolved (see docs/protection.md). */
export interface ProtectionConfig {
  trustedProxies: string[];
  limits: {
    challenge: RateRule | null;
    number: RateRule | null;
    user: RateRule | null;
    ip: RateRule | null;
    prefix: RateRule | null;
    global: RateRule | null;
    verify: RateRule | null;
  };
  allowedCountries: ReadonlySet<string> | null;
  blockedPrefixes: readonly string[];
  blockedNumberTypes: ReadonlySet<string>;
  safeNumbers: ReadonlySet<string>;
  breaker: { minSends: number; minConversion: number; windowMs: number; pauseMs: number } | null;
  budget: { capMicros: number; period: BudgetPeriod } | null;
  /** Country (or `default`) → estimated price of one SMS, in millionths of a dollar. */
  pricesMicros: ReadonlyMap<string, number>;
}

export const RATE_LIMIT_DEFAULTS = {
  RATE_LIMIT_CHALLENGE: "5/10m",
  RATE_LIMIT_NUMBER: "10/1h",
  RATE_LIMIT_USER: "20/1h",
  RATE_LIMIT_IP: "20/1h",
  RATE_LIMIT_PREFIX: "20/1h",
  RATE_LIMIT_GLOBAL: "1000/1h",
  RATE_LIMIT_VERIFY: "10/1h",
} as const;

/** libphonenumber-js's number types, and UNKNOWN for a number whose type the metadata cannot tell. */
export const NUMBER_TYPES = [
  "FIXED_LINE",
  "MOBILE",
  "FIXED_LINE_OR_MOBILE",
  "PREMIUM_RATE",
  "TOLL_FREE",
  "SHARED_COST",
  "VOIP",
  "PERSONAL_NUMBER",
  "PAGER",
  "UAN",
  "VOICEMAIL",
  "UNKNOWN",
] as const;

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

const list = (raw: string | undefined): string[] =>
  raw === undefined
    ? []
    : raw
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item !== "");

/** Reads the protection variables, pushing one readable message per problem. */
export function readProtection(get: (name: string) => string | undefined, problems: string[]): ProtectionConfig {
  const rate = (name: keyof typeof RATE_LIMIT_DEFAULTS): RateRule | null => {
    const raw = get(name) ?? RATE_LIMIT_DEFAULTS[name];
    const parsed = parseRate(raw);
    if (parsed === undefined) {
      problems.push(`${name}=${JSON.stringify(raw)} is not allowed: expected <count>/<window> such as 10/1h (s, m, h, d) or off.`);
      return parseRate(RATE_LIMIT_DEFAULTS[name]) ?? null;
    }
    return parsed;
  };
  const duration = (name: string, fallback: string): number => {
    const raw = get(name) ?? fallback;
    const ms = parseDuration(raw);
    if (ms === null) {
      problems.push(`${name}=${JSON.stringify(raw)} is not a duration: expected seconds or a number with s, m, h or d (30m).`);
      return parseDuration(fallback) ?? 0;
    }
    return ms;
  };

  const trustedProxies = list(get("TRUSTED_PROXIES"));
  for (const proxy of trustedProxies) {
    if (!/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(proxy) && !["loopback", "linklocal", "uniquelocal"].includes(proxy)) {
      problems.push(`TRUSTED_PROXIES entry ${JSON.stringify(proxy)} is not an IP address or CIDR (10.0.0.0/8, ::1, loopback).`);
    }
  }

  const allowed = list(get("ALLOWED_COUNTRIES")).map((country) => country.toUpperCase());
  for (const country of allowed) {
    if (!isSupportedCountry(country))
      problems.push(`ALLOWED_COUNTRIES entry ${JSON.stringify(country)} is not an ISO 3166 country code (CR, US, ES).`);
  }
  const blockedPrefixes = list(get("BLOCKED_PREFIXES"));
  for (const prefix of blockedPrefixes) {
    if (!/^\+\d{1,14}$/.test(prefix))
      problems.push(`BLOCKED_PREFIXES entry ${JSON.stringify(prefix)} is not an E.164 prefix such as +882 or +5069.`);
  }
  const types = list(get("BLOCKED_NUMBER_TYPES") ?? "PREMIUM_RATE,SHARED_COST,PAGER,UNKNOWN").map((type) => type.toUpperCase());
  for (const type of types) {
    if (type !== "NONE" && !(NUMBER_TYPES as readonly string[]).includes(type)) {
      problems.push(`BLOCKED_NUMBER_TYPES entry ${JSON.stringify(type)} is not a number type: use ${NUMBER_TYPES.join(", ")} or none.`);
    }
  }
  const safeNumbers = new Set<string>();
  for (const entry of list(get("SAFE_NUMBERS"))) {
    const e164 = normalisePhone(entry, null);
    if (e164 === null) problems.push(`SAFE_NUMBERS entry ${JSON.stringify(entry)} is not a phone number in E.164 form (+50688887777).`);
    else safeNumbers.add(e164);
  }

  const minSendsRaw = get("CONVERSION_BREAKER_MIN_SENDS") ?? "20";
  const minRateRaw = get("CONVERSION_BREAKER_MIN_RATE") ?? "10";
  let breaker: ProtectionConfig["breaker"] = null;
  if (!/^\d+$/.test(minSendsRaw))
    problems.push(`CONVERSION_BREAKER_MIN_SENDS=${JSON.stringify(minSendsRaw)} is not a whole number (0 turns the breaker off).`);
  if (!/^\d+(\.\d+)?$/.test(minRateRaw) || Number(minRateRaw) > 100) {
    problems.push(`CONVERSION_BREAKER_MIN_RATE=${JSON.stringify(minRateRaw)} is not a percentage from 0 to 100.`);
  }
  const windowMs = duration("CONVERSION_BREAKER_WINDOW", "1h");
  const pauseMs = duration("CONVERSION_BREAKER_PAUSE", "1h");
  if (/^\d+$/.test(minSendsRaw) && Number(minSendsRaw) > 0) {
    breaker = { minSends: Number(minSendsRaw), minConversion: Number(minRateRaw) / 100, windowMs, pauseMs };
  }

  let budget: ProtectionConfig["budget"] = null;
  const budgetRaw = get("SMS_BUDGET_USD");
  const period = (get("SMS_BUDGET_PERIOD") ?? "month").toLowerCase();
  if (!["day", "month", "total"].includes(period))
    problems.push(`SMS_BUDGET_PERIOD=${JSON.stringify(period)} is not a period: use day, month or total.`);
  if (budgetRaw !== undefined) {
    if (!/^\d+(\.\d{1,6})?$/.test(budgetRaw) || Number(budgetRaw) <= 0) {
      problems.push(`SMS_BUDGET_USD=${JSON.stringify(budgetRaw)} is not an amount of dollars greater than 0 (for example 14.2747).`);
    } else {
      budget = { capMicros: usdToMicros(Number(budgetRaw)), period: period as BudgetPeriod };
    }
  }

  const prices = new Map<string, number>(Object.entries(DEFAULT_SMS_PRICES_USD).map(([country, usd]) => [country, usdToMicros(usd)]));
  const pricesFile = get("SMS_PRICES_FILE");
  if (pricesFile !== undefined) {
    try {
      const table = JSON.parse(readFileSync(pricesFile, "utf8")) as unknown;
      if (typeof table !== "object" || table === null || Array.isArray(table)) throw new Error("not a JSON object");
      for (const [country, usd] of Object.entries(table)) {
        const key = country === "default" ? country : country.toUpperCase();
        if ((key !== "default" && !isSupportedCountry(key)) || typeof usd !== "number" || !(usd >= 0)) {
          problems.push(
            `SMS_PRICES_FILE entry ${JSON.stringify(country)}: ${JSON.stringify(usd)} is not allowed: expected an ISO country (or default) and a price in dollars.`,
          );
          continue;
        }
        prices.set(key, usdToMicros(usd));
      }
    } catch (error) {
      problems.push(
        `SMS_PRICES_FILE=${JSON.stringify(pricesFile)} cannot be read as a JSON object of prices: ${(error as Error).message}.`,
      );
    }
  }

  return {
    trustedProxies,
    limits: {
      challenge: rate("RATE_LIMIT_CHALLENGE"),
      number: rate("RATE_LIMIT_NUMBER"),
      user: rate("RATE_LIMIT_USER"),
      ip: rate("RATE_LIMIT_IP"),
      prefix: rate("RATE_LIMIT_PREFIX"),
      global: rate("RATE_LIMIT_GLOBAL"),
      verify: rate("RATE_LIMIT_VERIFY"),
    },
    allowedCountries: allowed.length === 0 ? null : new Set(allowed),
    blockedPrefixes,
    blockedNumberTypes: new Set(types.filter((type) => type !== "NONE")),
    safeNumbers,
    breaker,
    budget,
    pricesMicros: prices,
  };
}
