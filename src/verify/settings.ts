import type { VerifyServiceRecord } from "../store/verify-store.js";
import { invalidParameter } from "./errors.js";

/** Twilio's form parameters: a name, its values in order (a repeated key is an array). */
export type Params = Readonly<Record<string, string | readonly string[]>>;

/** The last value given for `name`, or undefined. */
export function param(params: Params, name: string): string | undefined {
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

/** A JSON-valued parameter (`RateLimits`, `ChannelConfiguration`, `Tags`): an object of strings. */
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

/** Service parameters Twilio has and vericode does not offer: giving them is 60200, naming the parameter. */
const NOT_OFFERED_PREFIXES = ["Push.", "Totp.", "Passkeys."];
const NOT_OFFERED_WHEN_TRUE = ["Psd2Enabled", "CustomCodeEnabled", "VerifyEventSubscriptionEnabled"];

/** The settings a new service starts with (Twilio's defaults). */
const DEFAULT_SETTINGS = {
  lookup_enabled: false,
  skip_sms_to_landlines: false,
  dtmf_input_required: true,
  tts_name: null,
  do_not_share_warning_enabled: false,
  whatsapp_msg_service_sid: null,
  whatsapp_from: null,
} as const;

/**
 * FriendlyName is printed in every message: 1 to 30 letters, digits, spaces, `-` or `_`, at most four
 * digits (no phone numbers), no links (Twilio's rule for it).
 */
function friendlyName(value: string, name = "FriendlyName"): string {
  const trimmed = value.trim();
  const digits = trimmed.replace(/\D/g, "").length;
  if (!/^[\p{L}\p{N} _-]{1,30}$/u.test(trimmed) || digits > 4) {
    throw invalidParameter(name, `${name} is 1 to 30 letters, digits, spaces, - or _, with at most 4 digits and no links.`);
  }
  return trimmed;
}

export function customFriendlyName(value: string | undefined): string | null {
  return value === undefined ? null : friendlyName(value, "CustomFriendlyName");
}

/** A service after `params` (create: over Twilio's defaults; update: over what it was). */
export function serviceWith(params: Params, base: VerifyServiceRecord): VerifyServiceRecord {
  for (const name of Object.keys(params)) {
    if (NOT_OFFERED_PREFIXES.some((prefix) => name.startsWith(prefix)) || name === "DefaultTemplateSid") {
      throw invalidParameter(name, `vericode does not offer ${name} (docs/twilio-verify.md lists what it offers).`);
    }
  }
  for (const name of NOT_OFFERED_WHEN_TRUE) {
    if (booleanParam(params, name) === true) throw invalidParameter(name, `vericode does not offer ${name}.`);
  }
  const given = param(params, "FriendlyName");
  const ttsName = param(params, "TtsName");
  const settings: Record<string, unknown> = { ...DEFAULT_SETTINGS, ...base.settings };
  const flags: [string, string][] = [
    ["LookupEnabled", "lookup_enabled"],
    ["SkipSmsToLandlines", "skip_sms_to_landlines"],
    ["DtmfInputRequired", "dtmf_input_required"],
    ["DoNotShareWarningEnabled", "do_not_share_warning_enabled"],
  ];
  for (const [name, field] of flags) {
    const value = booleanParam(params, name);
    if (value !== undefined) settings[field] = value;
  }
  if (ttsName !== undefined) settings.tts_name = ttsName.slice(0, 100);
  const whatsappFrom = param(params, "Whatsapp.From");
  const whatsappService = param(params, "Whatsapp.MsgServiceSid");
  if (whatsappFrom !== undefined) settings.whatsapp_from = whatsappFrom;
  if (whatsappService !== undefined) settings.whatsapp_msg_service_sid = whatsappService;
  return {
    ...base,
    friendlyName: given === undefined ? base.friendlyName : friendlyName(given),
    codeLength: integerParam(params, "CodeLength", 4, 10) ?? base.codeLength,
    settings,
  };
}

export function newService(sid: string, params: Params, now: number): VerifyServiceRecord {
  if (param(params, "FriendlyName") === undefined) throw invalidParameter("FriendlyName", "FriendlyName is required.");
  return serviceWith(params, { sid, friendlyName: "", codeLength: 6, settings: { ...DEFAULT_SETTINGS }, createdAt: now, updatedAt: now });
}
