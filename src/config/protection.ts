import { DEFAULT_SMS_PRICES_USD, usdToMicros } from "../limits/prices.js";
import type { ProtectionConfig } from "../limits/settings.js";
import type { EnvReader } from "./env-reader.js";
import { VARIABLES as V } from "./variables.js";

type DestinationRules = Pick<ProtectionConfig, "allowedCountries" | "blockedPrefixes" | "blockedNumberTypes" | "safeNumbers">;

/** Reads the protection variables (their parsers and defaults are in src/config/variables.ts). */
export function readProtection(env: EnvReader): ProtectionConfig {
  const trustedProxies = env.read(V.TRUSTED_PROXIES) ?? [];
  const destinations = readDestinationRules(env);
  const breaker = readBreaker(env);
  const budget = readBudget(env);
  const pricesMicros = readPrices(env);
  return { trustedProxies, limits: readLimits(env), ...destinations, breaker, budget, pricesMicros };
}

/** Which numbers may be sent to at all. */
function readDestinationRules(env: EnvReader): DestinationRules {
  const allowed = env.read(V.ALLOWED_COUNTRIES) ?? [];
  const blockedPrefixes = env.read(V.BLOCKED_PREFIXES) ?? [];
  const types = env.read(V.BLOCKED_NUMBER_TYPES);
  const safeNumbers = new Set(env.read(V.SAFE_NUMBERS));
  return {
    allowedCountries: allowed.length === 0 ? null : new Set(allowed),
    blockedPrefixes,
    blockedNumberTypes: new Set(types.filter((type) => type !== "NONE")),
    safeNumbers,
  };
}

/** The conversion breaker; null when CONVERSION_BREAKER_MIN_SENDS is 0. */
function readBreaker(env: EnvReader): ProtectionConfig["breaker"] {
  const minSends = env.read(V.CONVERSION_BREAKER_MIN_SENDS);
  const minRate = env.read(V.CONVERSION_BREAKER_MIN_RATE);
  const windowMs = env.read(V.CONVERSION_BREAKER_WINDOW);
  const pauseMs = env.read(V.CONVERSION_BREAKER_PAUSE);
  return minSends > 0 ? { minSends, minConversion: minRate / 100, windowMs, pauseMs } : null;
}

/** The spend cap; null when SMS_BUDGET_USD is unset. */
function readBudget(env: EnvReader): ProtectionConfig["budget"] {
  const period = env.read(V.SMS_BUDGET_PERIOD);
  const usd = env.read(V.SMS_BUDGET_USD);
  return usd === undefined ? null : { capMicros: usdToMicros(usd), period };
}

/** The built-in price estimates, with SMS_PRICES_FILE's over them. */
function readPrices(env: EnvReader): Map<string, number> {
  const prices = new Map(Object.entries(DEFAULT_SMS_PRICES_USD).map(([country, usd]) => [country, usdToMicros(usd)]));
  for (const [country, usd] of env.read(V.SMS_PRICES_FILE) ?? []) prices.set(country, usdToMicros(usd));
  return prices;
}

function readLimits(env: EnvReader): ProtectionConfig["limits"] {
  return {
    challenge: env.read(V.RATE_LIMIT_CHALLENGE),
    number: env.read(V.RATE_LIMIT_NUMBER),
    user: env.read(V.RATE_LIMIT_USER),
    ip: env.read(V.RATE_LIMIT_IP),
    prefix: env.read(V.RATE_LIMIT_PREFIX),
    global: env.read(V.RATE_LIMIT_GLOBAL),
    verify: env.read(V.RATE_LIMIT_VERIFY),
  };
}
