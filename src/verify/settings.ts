import type { VerifyServiceRecord } from "../store/verify-store.js";
import { invalidParameter, missingParameter } from "./errors.js";
import { booleanParam, integerParam, type Params, param } from "./params.js";

/** A service's settings besides its name and code length, as Twilio's Service resource has them. */
export interface VerifySettings {
  lookupEnabled: boolean;
  skipSmsToLandlines: boolean;
  /** Stored and shown; calls do not ask for a key press. */
  dtmfInputRequired: boolean;
  /** Stored and shown. */
  ttsName: string | null;
  doNotShareWarningEnabled: boolean;
  /** Stored and shown; WhatsApp goes from TWILIO_WHATSAPP_FROM. */
  whatsappMsgServiceSid: string | null;
  whatsappFrom: string | null;
}

/** Twilio's defaults for a new service. */
const DEFAULT_SETTINGS: VerifySettings = {
  lookupEnabled: false,
  skipSmsToLandlines: false,
  dtmfInputRequired: true,
  ttsName: null,
  doNotShareWarningEnabled: false,
  whatsappMsgServiceSid: null,
  whatsappFrom: null,
};

/** A stored service's settings, its JSON read over the defaults (a field added later reads its default). */
export function settingsOf(service: VerifyServiceRecord): VerifySettings {
  return { ...DEFAULT_SETTINGS, ...(service.settings as Partial<VerifySettings>) };
}

/** Service parameters Twilio has and vericode does not offer: giving them is 60200, naming the parameter. */
const NOT_OFFERED_PREFIXES = ["Push.", "Totp.", "Passkeys."];
const NOT_OFFERED_WHEN_TRUE = ["Psd2Enabled", "CustomCodeEnabled", "VerifyEventSubscriptionEnabled"];

/** The boolean parameters of a service and the setting each sets. */
const FLAGS: readonly [string, "lookupEnabled" | "skipSmsToLandlines" | "dtmfInputRequired" | "doNotShareWarningEnabled"][] = [
  ["LookupEnabled", "lookupEnabled"],
  ["SkipSmsToLandlines", "skipSmsToLandlines"],
  ["DtmfInputRequired", "dtmfInputRequired"],
  ["DoNotShareWarningEnabled", "doNotShareWarningEnabled"],
];

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

function refuseNotOffered(params: Params): void {
  for (const name of Object.keys(params)) {
    if (NOT_OFFERED_PREFIXES.some((prefix) => name.startsWith(prefix)) || name === "DefaultTemplateSid") {
      throw invalidParameter(name, `vericode does not offer ${name} (docs/twilio-verify.md lists what it offers).`);
    }
  }
  for (const name of NOT_OFFERED_WHEN_TRUE) {
    if (booleanParam(params, name) === true) throw invalidParameter(name, `vericode does not offer ${name}.`);
  }
}

/** A service after `params` (create: over Twilio's defaults; update: over what it was). */
export function serviceWith(params: Params, base: VerifyServiceRecord): VerifyServiceRecord {
  refuseNotOffered(params);
  const settings: VerifySettings = settingsOf(base);
  for (const [name, field] of FLAGS) {
    const value = booleanParam(params, name);
    if (value !== undefined) settings[field] = value;
  }
  const ttsName = param(params, "TtsName");
  const whatsappFrom = param(params, "Whatsapp.From");
  const whatsappService = param(params, "Whatsapp.MsgServiceSid");
  if (ttsName !== undefined) settings.ttsName = ttsName.slice(0, 100);
  if (whatsappFrom !== undefined) settings.whatsappFrom = whatsappFrom.slice(0, 100);
  if (whatsappService !== undefined) settings.whatsappMsgServiceSid = whatsappService.slice(0, 34);
  const given = param(params, "FriendlyName");
  return {
    ...base,
    friendlyName: given === undefined ? base.friendlyName : friendlyName(given),
    codeLength: integerParam(params, "CodeLength", 4, 10) ?? base.codeLength,
    settings: { ...settings },
  };
}

export function newService(sid: string, params: Params, now: number): VerifyServiceRecord {
  if (param(params, "FriendlyName") === undefined) throw missingParameter("FriendlyName");
  return serviceWith(params, { sid, friendlyName: "", codeLength: 6, settings: { ...DEFAULT_SETTINGS }, createdAt: now, updatedAt: now });
}
