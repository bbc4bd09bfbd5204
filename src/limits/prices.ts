/**
 * Estimated price of one outbound SMS segment by destination country, in US dollars: the amount reserved
 * against SMS_BUDGET_USD before a send, replaced by the provider's reported price when it is known.
 * Rounded up from Twilio's published list prices (2025); a deployment overrides or extends them with
 * SMS_PRICES_FILE, a JSON object {"CR": 0.057, "default": 0.1}.
 */
export const DEFAULT_SMS_PRICES_USD: Readonly<Record<string, number>> = {
  default: 0.1,
  AR: 0.075,
  AT: 0.11,
  AU: 0.055,
  BE: 0.11,
  BR: 0.05,
  CA: 0.0085,
  CH: 0.07,
  CL: 0.065,
  CN: 0.045,
  CO: 0.0105,
  CR: 0.057,
  DE: 0.095,
  DK: 0.055,
  DO: 0.09,
  EC: 0.14,
  ES: 0.081,
  FR: 0.08,
  GB: 0.047,
  GT: 0.1,
  HN: 0.1,
  IE: 0.085,
  IN: 0.085,
  IT: 0.09,
  JP: 0.085,
  MX: 0.04,
  NI: 0.11,
  NL: 0.11,
  NO: 0.07,
  PA: 0.07,
  PE: 0.09,
  PL: 0.04,
  PT: 0.045,
  SE: 0.07,
  SV: 0.1,
  US: 0.0085,
  UY: 0.08,
  VE: 0.05,
};

/** Millionths of a dollar: integers add up exactly. */
export function usdToMicros(usd: number): number {
  return Math.round(usd * 1_000_000);
}

export function microsToUsd(micros: number): number {
  return micros / 1_000_000;
}
