import { isIP } from "node:net";
import { invalidParameter, missingParameter } from "./errors.js";
import { objectParam, type Params, param } from "./params.js";
import { customFriendlyName } from "./settings.js";

/** A start, read from Twilio's parameters and checked. */
export interface StartRequest {
  to: string;
  channel: string;
  locale: string | null;
  customFriendlyName: string | null;
  appHash: string | null;
  /** The end user's address (`DeviceIp`): it counts on the per-address limit, the caller's own never does. */
  deviceIp: string | null;
  /** `RateLimits`: a value per rate limit's unique name. */
  rateLimits: Readonly<Record<string, string>>;
  /** `ChannelConfiguration`'s `from` and `from_name`, for the email channel. */
  sender: { address: string; name: string | null } | null;
}

/** A check: the code, and the verification by its `To` or its sid. */
export interface CheckRequest {
  code: string;
  target: { to: string } | { sid: string };
}

/** Verification parameters Twilio has and vericode does not offer: giving one is 60200 naming it. */
const NOT_OFFERED = [
  "CustomCode",
  "CustomMessage",
  "SendDigits",
  "Amount",
  "Payee",
  "TemplateSid",
  "TemplateCustomSubstitutions",
  "Templates",
  "SnaClientToken",
];

function refuseNotOffered(params: Params, names: readonly string[]): void {
  for (const name of names) if (param(params, name) !== undefined) throw invalidParameter(name, `vericode does not offer ${name}.`);
}

/** A verification start's parameters, read and checked (60200 naming the first that is wrong). */
export function startRequest(params: Params): StartRequest {
  refuseNotOffered(params, NOT_OFFERED);
  if (param(params, "EnableSnaClientToken")?.toLowerCase() === "true") {
    throw invalidParameter("EnableSnaClientToken", "vericode does not offer SNA.");
  }
  const to = param(params, "To")?.trim();
  if (to === undefined || to === "") throw missingParameter("To");
  const channel = param(params, "Channel");
  if (channel === undefined) throw missingParameter("Channel");
  const deviceIp = param(params, "DeviceIp") ?? null;
  if (deviceIp !== null && isIP(deviceIp) === 0) throw invalidParameter("DeviceIp", "DeviceIp must be an IPv4 or IPv6 address.");
  const risk = param(params, "RiskCheck");
  if (risk !== undefined && risk !== "enable" && risk !== "disable") throw invalidParameter("RiskCheck", "RiskCheck is enable or disable.");
  const tags = objectParam(params, "Tags");
  if (tags !== undefined && Object.keys(tags).length > 10) throw invalidParameter("Tags", "Tags holds at most 10 pairs.");
  const appHash = param(params, "AppHash") ?? null;
  if (appHash !== null && !/^[A-Za-z0-9+/]{11}$/.test(appHash)) {
    throw invalidParameter("AppHash", "AppHash is the 11-character hash of an Android app.");
  }
  return {
    to,
    channel: channel.toLowerCase(),
    locale: param(params, "Locale") ?? null,
    customFriendlyName: customFriendlyName(param(params, "CustomFriendlyName")),
    appHash,
    deviceIp,
    rateLimits: rateLimits(objectParam(params, "RateLimits")),
    sender: emailSender(objectParam(params, "ChannelConfiguration")),
  };
}

/** `RateLimits`: unique names to values (strings or numbers), each value at most 256 characters. */
function rateLimits(given: Record<string, unknown> | undefined): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(given ?? {})) {
    if ((typeof value !== "string" && typeof value !== "number") || String(value).length > 256) {
      throw invalidParameter("RateLimits", "RateLimits maps unique names to strings of at most 256 characters.");
    }
    values[name] = String(value);
  }
  return values;
}

/** ChannelConfiguration's `from` (an address) and `from_name`, for an email; the rest is not offered. */
function emailSender(configuration: Record<string, unknown> | undefined): StartRequest["sender"] {
  if (configuration === undefined) return null;
  const { from, from_name: name, ...rest } = configuration;
  const other = Object.keys(rest)[0];
  if (other !== undefined) {
    throw invalidParameter("ChannelConfiguration", `vericode takes from and from_name in ChannelConfiguration, not ${other}.`);
  }
  if (from === undefined) return null;
  if (typeof from !== "string" || from.length > 254 || !/^[^\s@<>"]+@[^\s@<>"]+$/.test(from)) {
    throw invalidParameter("ChannelConfiguration", "from must be an email address.");
  }
  if (name !== undefined && (typeof name !== "string" || name.length > 100 || /[\r\n<>"]/.test(name))) {
    throw invalidParameter("ChannelConfiguration", "from_name is up to 100 characters, without quotes, angle brackets or line breaks.");
  }
  return { address: from, name: typeof name === "string" ? name : null };
}

/** A check's parameters: `Code` (4 to 10 digits) and `To` or `VerificationSid`. */
export function checkRequest(params: Params): CheckRequest {
  refuseNotOffered(params, ["Amount", "Payee", "SnaClientToken"]);
  const code = param(params, "Code");
  if (code === undefined) throw missingParameter("Code", "Code is required: 4 to 10 digits.");
  if (!/^[0-9]{4,10}$/.test(code)) throw invalidParameter("Code", "Code is 4 to 10 digits.");
  const to = param(params, "To");
  const sid = param(params, "VerificationSid");
  if (sid !== undefined) return { code, target: { sid } };
  if (to === undefined) throw missingParameter("To", "Give To or VerificationSid.");
  return { code, target: { to } };
}
