import type { RateRule } from "../config/parsers.js";

export type { RateRule } from "../config/parsers.js";

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
