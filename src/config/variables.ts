import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { type CountryCode, isSupportedCountry } from "libphonenumber-js/max";
import { CHANNEL_NAMES, type ChannelName, isChannelName } from "../channels/channel.js";
import { readTemplatesDir } from "../i18n/messages.js";
import type { SmsTemplates } from "../i18n/templates.js";
import { normalisePhone } from "../phone.js";
import type { DatabaseLocation } from "../store/store.js";
import {
  boolean,
  checked,
  duration,
  entry,
  httpUrl,
  Invalid,
  integer,
  invalid,
  list,
  oneOf,
  type Parser,
  rate,
  rewritten,
  text,
  withoutTrailingSlashes,
} from "./parsers.js";

/**
 * Every environment variable vericode reads, declared once: `loadConfig` reads them through this table, and
 * `.env.example` and the README's configuration table are generated from it (`npm run config:docs`; a test
 * fails when they drift). A value some other variable decides (PUBLIC_BASE_URL's, SMS_PROVIDER's…) has no
 * `default` here: config.ts computes it, and `shownDefault` tells readers what it is.
 */
export interface VariableSpec<T> {
  /** The section it is listed under in `.env.example`. */
  readonly group: keyof typeof GROUPS;
  /** What it does, in one line of Markdown (`.env.example` shows it without backticks). */
  readonly description: string;
  /** Reads its text (trimmed, never blank) into its value, or names the problem. */
  readonly parse: Parser<T>;
  /** The text used when it is unset, read by `parse` like any other. @default unset */
  readonly default?: string;
  /** How the README shows a default that config.ts computes (Markdown). @default the default, or "unset" */
  readonly shownDefault?: string;
  /** A value `.env.example` shows, commented out, when there is no default. @default "" */
  readonly example?: string;
  /** A key, token or password: `.env.example` never shows a value for it. @default false */
  readonly secret?: boolean;
}

export interface Variable<T> extends VariableSpec<T> {
  readonly name: string;
}

/** A variable with a fixed default: reading it always answers a value. */
export interface DefaultedVariable<T> extends Variable<T> {
  readonly default: string;
}

/** The sections of `.env.example`, in order. */
export const GROUPS = {
  service: "Service",
  storage: "Storage",
  tokens: "Tokens",
  codes: "Codes",
  sms: "SMS provider",
  accounts: "Accounts and the web demo",
  protection: "Protection (docs/protection.md)",
  channels: "Channels (docs/channels.md)",
  messages: "Messages",
  operations: "Operations (docs/deployment.md)",
  verify: "Twilio Verify v2-compatible API (docs/twilio-verify.md)",
} as const;

/** Where the database is (the store's own shape). */
export type DatabaseConfig = DatabaseLocation;

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

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

/** The resend cooldown's ceiling when OTP_RESEND_COOLDOWN_MAX_SECONDS is unset (or the cooldown, if larger). */
export const RESEND_COOLDOWN_MAX_SECONDS = 300;

const quote = (raw: string): string => JSON.stringify(raw);
const upperCase = (raw: string): string => raw.toUpperCase();
const sid = (prefix: string, note = ""): Parser<string> =>
  checked(new RegExp(`^${prefix}[0-9a-fA-F]{32}$`), (name) => `${name} must be ${prefix} followed by 32 hexadecimal characters${note}.`);

const databaseUrl: Parser<DatabaseConfig> = (raw, name) => {
  if (raw.startsWith("sqlite:")) {
    const rest = raw.slice("sqlite:".length).replace(/^\/\//, "");
    if (rest === "") return invalid(`${name}="sqlite:" needs a file path, for example sqlite:data/vericode.db.`);
    return { kind: "sqlite", path: rest === ":memory:" ? rest : resolve(rest) };
  }
  if (raw.startsWith("postgres://") || raw.startsWith("postgresql://")) {
    return URL.canParse(raw) ? { kind: "postgres", url: raw } : invalid(`${name} is not a valid postgres:// URL.`);
  }
  return invalid(`${name} must be sqlite:<path> or postgres://user:pass@host:5432/db (got a value starting ${quote(raw.slice(0, 12))}).`);
};

const secretKey = checked(
  (raw) => Buffer.byteLength(raw) >= 32,
  (name) => `${name} is too short: it must be at least 32 bytes (for example: openssl rand -hex 32).`,
);

/** One OTP_SECRETS entry: `id:secret`, the id short and plain, the secret as long as OTP_SECRET's. */
/** One VERIFY_API_KEYS entry: `SK…:secret`, as Twilio's API keys (sid SK + 32 hex, a secret of 32+ characters). */
const verifyApiKey: Parser<{ sid: string; secret: string }> = (raw, name) => {
  const at = raw.indexOf(":");
  const sid = raw.slice(0, Math.max(0, at));
  const secret = raw.slice(at + 1);
  if (!/^SK[0-9a-fA-F]{32}$/.test(sid)) {
    return invalid(`${name} takes SK…:secret pairs separated by commas; the sid is SK and 32 hex digits.`);
  }
  if (secret.length < 32) return invalid(`${name}: the secret of ${sid} is too short: use at least 32 characters (openssl rand -hex 16).`);
  return { sid, secret };
};

const otpKey: Parser<{ id: string; secret: string }> = (raw, name) => {
  const at = raw.indexOf(":");
  const id = raw.slice(0, Math.max(0, at));
  const secret = raw.slice(at + 1);
  if (at <= 0 || !/^[A-Za-z0-9_.-]{1,32}$/.test(id)) {
    return invalid(
      `${name} takes id:secret pairs separated by commas (for example k2:<64 hex>,k1:<64 hex>); the id is 1 to 32 letters, digits, _ . or -.`,
    );
  }
  if (Buffer.byteLength(secret) < 32)
    return invalid(`${name}: the key ${id} is too short: it must be at least 32 bytes (for example: openssl rand -hex 32).`);
  return { id, secret };
};

/** OTP_SECRETS: at least one key, no id twice. */
const otpKeys: Parser<{ id: string; secret: string }[]> = (raw, name) => {
  const keys = list(otpKey)(raw, name);
  if (keys instanceof Invalid) return keys;
  if (keys.length === 0) return invalid(`${name} is empty: give at least one id:secret pair.`);
  const twice = keys.find((key, i) => keys.findIndex((other) => other.id === key.id) !== i);
  return twice === undefined ? keys : invalid(`${name} names the key ${twice.id} twice: each key needs an id of its own.`);
};

const publicKey: Parser<string> = (raw, name) => {
  // Accept the PEM itself (with literal "\n" as .env files often carry it) or a path to a PEM file.
  const pem = raw.includes("-----BEGIN") ? raw.replace(/\\n/g, "\n") : existsSync(raw) ? readFileSync(raw, "utf8") : null;
  return pem?.includes("PUBLIC KEY-----")
    ? pem
    : invalid(`${name} must be a PEM public key (-----BEGIN PUBLIC KEY-----…) or the path of a file holding one.`);
};

const country: Parser<CountryCode> = (raw, name) => {
  const code = raw.toUpperCase();
  return isSupportedCountry(code) ? code : invalid(`${name}=${quote(code)} is not an ISO 3166 country code (for example CR, US, ES).`);
};

const e164 =
  (example: string): Parser<string> =>
  (raw, name) =>
    normalisePhone(raw, null) ?? invalid(`${name}=${quote(raw)} is not a phone number in E.164 form (${example}).`);

const localeTag = checked(
  /^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$/,
  (name, raw) => `${name}=${quote(raw)} is not a language tag such as en, es or es-CR.`,
);

const channel: Parser<ChannelName> = (raw, name) =>
  isChannelName(raw)
    ? raw
    : invalid(`${name} entry ${quote(raw)} is not a channel: use ${CHANNEL_NAMES.join(", ")} separated by ':' (whatsapp:sms).`);

const templatesDir: Parser<Record<string, Partial<SmsTemplates>>> = (raw) => {
  const problems: string[] = [];
  const overrides = readTemplatesDir(resolve(raw), problems);
  return problems.length > 0 ? new Invalid(problems) : overrides;
};

const safeNumber: Parser<string> = (raw, name) =>
  normalisePhone(raw, null) ?? invalid(`${name} entry ${quote(raw)} is not a phone number in E.164 form (+50688887777).`);

/** Estimated prices of one SMS in dollars, by ISO country or `default`, in the file's order. */
const pricesFile: Parser<Map<string, number>> = (raw, name) => {
  const prices = new Map<string, number>();
  const problems: string[] = [];
  try {
    const table = JSON.parse(readFileSync(raw, "utf8")) as unknown;
    if (typeof table !== "object" || table === null || Array.isArray(table)) throw new Error("not a JSON object");
    for (const [key, usd] of Object.entries(table)) {
      const where = key === "default" ? key : key.toUpperCase();
      if ((where !== "default" && !isSupportedCountry(where)) || typeof usd !== "number" || !(usd >= 0)) {
        problems.push(
          `${name} entry ${quote(key)}: ${JSON.stringify(usd)} is not allowed: expected an ISO country (or default) and a price in dollars.`,
        );
        continue;
      }
      prices.set(where, usd);
    }
  } catch (error) {
    problems.push(`${name}=${quote(raw)} cannot be read as a JSON object of prices: ${(error as Error).message}.`);
  }
  return problems.length > 0 ? new Invalid(problems) : prices;
};

function declareVariables<S extends Record<string, VariableSpec<unknown>>>(specs: S): { [K in keyof S & string]: S[K] & { name: K } } {
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, { name, ...spec }])) as {
    [K in keyof S & string]: S[K] & { name: K };
  };
}

export const VARIABLES = declareVariables({
  NODE_ENV: {
    group: "service",
    default: "development",
    parse: text,
    description:
      "`development`, `production` or `test`; `production` requires `JWT_SECRET` and `OTP_SECRET` (or `OTP_SECRETS`), refuses the console provider and `OTP_TEST_NUMBERS`",
  },
  PORT: { group: "service", default: "3000", parse: integer(0, 65535), description: "the port the HTTP API listens on" },
  HOST: {
    group: "service",
    default: "127.0.0.1",
    parse: text,
    description: "the address the HTTP API listens on (`0.0.0.0` in a container)",
  },
  LOG_LEVEL: {
    group: "service",
    default: "info",
    parse: oneOf(LOG_LEVELS, `a level: use one of ${LOG_LEVELS.join(", ")}`),
    description: `pino level (${LOG_LEVELS.join(", ")}); codes, tokens and secrets are never logged (the console provider's message is the one deliberate exception, and production refuses it)`,
  },
  PUBLIC_BASE_URL: {
    group: "service",
    shownDefault: "`http://HOST:PORT`",
    example: "https://otp.example.com",
    parse: rewritten(withoutTrailingSlashes, httpUrl),
    description:
      "the service's public address: OpenAPI `servers`, and the base of the `StatusCallback` Twilio posts to (must match exactly for signatures)",
  },

  DATABASE_URL: {
    group: "storage",
    default: "sqlite:data/vericode.db",
    parse: databaseUrl,
    description: "`sqlite:<path>` (embedded) or `postgres://user:pass@host:5432/db`",
  },
  REDIS_URL: {
    group: "storage",
    example: "redis://127.0.0.1:6379",
    parse: checked(/^rediss?:\/\//, (name, raw) => `${name}=${quote(raw)} must start with redis:// or rediss://.`),
    description: "rate-limit counters in Redis (`redis://…` or `rediss://…`), shared by every instance; else in the database",
  },
  REDIS_KEY_PREFIX: {
    group: "storage",
    default: "vericode:rl:",
    parse: text,
    description: "prefix of every Redis key vericode writes (several deployments may share one Redis)",
  },

  JWT_SECRET: {
    group: "tokens",
    shownDefault: "generated in development",
    secret: true,
    parse: secretKey,
    description:
      "HS256 key of the tokens vericode issues and accepts, at least 32 bytes (`openssl rand -hex 32`); in development, generated once into `data/dev-secrets.json` with a warning",
  },
  JWT_PUBLIC_KEY: {
    group: "tokens",
    parse: publicKey,
    description: "also accept an external issuer's RS256 / ES256 / EdDSA tokens: its PEM public key, or the path of a file holding one…",
  },
  JWT_JWKS_URL: {
    group: "tokens",
    example: "https://issuer.example.com/.well-known/jwks.json",
    parse: httpUrl,
    description: "…or the URL of its JWKS",
  },
  JWT_JWKS_TIMEOUT_MS: {
    group: "tokens",
    default: "5000",
    parse: integer(1, 60_000),
    description:
      "deadline in milliseconds of a fetch of `JWT_JWKS_URL` (fetched at most once per 30 s, kept as long as its Cache-Control says, 10 minutes without): past it, a token whose key is not known yet is refused (401); keys already known keep working",
  },
  JWT_ISSUER: { group: "tokens", default: "vericode", parse: text, description: "the issuer (`iss`) checked on every token" },
  JWT_AUDIENCE: { group: "tokens", default: "vericode", parse: text, description: "the audience (`aud`) checked on every token" },

  OTP_SECRET: {
    group: "codes",
    shownDefault: "generated in development",
    secret: true,
    parse: secretKey,
    description:
      "key of the HMAC under which codes are stored, at least 32 bytes; generated like `JWT_SECRET` in development; the one-key form of `OTP_SECRETS` (its id is `default`)",
  },
  OTP_SECRETS: {
    group: "codes",
    secret: true,
    parse: otpKeys,
    description:
      "keys of the codes' HMAC as `id:secret` pairs, comma-separated, each at least 32 bytes: the first makes new codes, all verify, so a key can rotate without killing the codes in flight (docs/security.md); instead of `OTP_SECRET`",
  },
  OTP_LENGTH: { group: "codes", default: "6", parse: integer(4, 10), description: "digits per code, 4 to 10" },
  OTP_TTL_SECONDS: { group: "codes", default: "600", parse: integer(30, 86_400), description: "a code's lifetime in seconds" },
  OTP_MAX_ATTEMPTS: {
    group: "codes",
    default: "5",
    parse: integer(1, 100),
    description: "wrong tries per challenge (number, purpose and user) before its codes are dead",
  },
  OTP_RESEND_COOLDOWN_SECONDS: {
    group: "codes",
    default: "30",
    parse: integer(0, 86_400),
    description: "gap in seconds after a send per challenge; doubles with each resend",
  },
  OTP_RESEND_COOLDOWN_MAX_SECONDS: {
    group: "codes",
    shownDefault: `\`${RESEND_COOLDOWN_MAX_SECONDS}\` (or \`OTP_RESEND_COOLDOWN_SECONDS\` if larger)`,
    example: String(RESEND_COOLDOWN_MAX_SECONDS),
    parse: integer(0, 86_400),
    description: "the largest gap in seconds the doubling reaches",
  },
  OTP_TEST_NUMBERS: {
    group: "codes",
    example: "+15005550006=123456",
    // Its entries' codes must have OTP_LENGTH digits: config.ts checks them.
    parse: text,
    description:
      "development and tests only: fixed codes for listed numbers (`+E164=code`, comma-separated), never sent, never rate-limited; refused in production",
  },

  SMS_PROVIDER: {
    group: "sms",
    shownDefault: "`twilio` if `TWILIO_ACCOUNT_SID` is set, else `console`",
    example: "console",
    parse: oneOf(["twilio", "console"], "a provider: use twilio or console"),
    description: "`twilio`, or `console` (prints each SMS to the log; refused in production)",
  },
  TWILIO_ACCOUNT_SID: { group: "sms", parse: sid("AC"), description: "Twilio account SID (`AC…`)" },
  TWILIO_AUTH_TOKEN: {
    group: "sms",
    secret: true,
    parse: text,
    description: "the account's auth token; Twilio signs status callbacks with it, so it is needed even with an API key",
  },
  TWILIO_API_KEY: {
    group: "sms",
    // Checked with TWILIO_API_SECRET, in one message, by config.ts.
    parse: text,
    description: "an API key (`SK…`) to use instead of the auth token, with…",
  },
  TWILIO_API_SECRET: { group: "sms", secret: true, parse: text, description: "…its secret" },
  TWILIO_PHONE_NUMBER: {
    group: "sms",
    example: "+15005550006",
    parse: e164("+15005550006"),
    description: "the sender: a number in E.164 form…",
  },
  TWILIO_MESSAGING_SERVICE_SID: { group: "sms", parse: sid("MG"), description: "…or a messaging service (`MG…`)" },
  TWILIO_API_BASE_URL: {
    group: "sms",
    shownDefault: "Twilio's",
    example: "http://127.0.0.1:4010",
    parse: rewritten(withoutTrailingSlashes, httpUrl),
    description: "send every Twilio API request to this base URL instead (tests use a local Twilio-compatible server)",
  },
  TEST_PHONE_NUMBER: {
    group: "sms",
    // Read in DEFAULT_COUNTRY's national format too: config.ts checks it.
    parse: text,
    description: "the number a live integration script sends to",
  },
  DEFAULT_COUNTRY: {
    group: "sms",
    example: "CR",
    parse: country,
    description: "ISO country used to read national-format numbers (with `CR`, `8888 7777` is `+50688887777`)",
  },

  REQUIRE_PHONE_VERIFICATION: {
    group: "accounts",
    default: "false",
    parse: boolean,
    description: "`true` keeps accounts without a verified number from everything but verifying it (403 `phone_verification_required`)",
  },
  WEB_DEMO: {
    group: "accounts",
    shownDefault: "`true` (`false` in production)",
    example: "true",
    parse: boolean,
    description: "serve the HTML demo at `/`",
  },

  TRUSTED_PROXIES: {
    group: "protection",
    example: "10.0.0.0/8",
    parse: list(
      entry(
        (raw) => /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(raw) || ["loopback", "linklocal", "uniquelocal"].includes(raw),
        "is not an IP address or CIDR (10.0.0.0/8, ::1, loopback).",
      ),
    ),
    description:
      "addresses or CIDRs (or `loopback`, `linklocal`, `uniquelocal`), comma-separated, whose `X-Forwarded-For` is believed for the client IP",
  },
  RATE_LIMIT_CHALLENGE: {
    group: "protection",
    default: "5/10m",
    parse: rate,
    description: "sends per challenge (number, purpose and user); every `RATE_LIMIT_…` is `<count>/<window>` (s, m, h, d) or `off`",
  },
  RATE_LIMIT_NUMBER: { group: "protection", default: "10/1h", parse: rate, description: "sends per number, across purposes and users" },
  RATE_LIMIT_USER: { group: "protection", default: "20/1h", parse: rate, description: "sends per user" },
  RATE_LIMIT_IP: {
    group: "protection",
    default: "20/1h",
    parse: rate,
    description: "sends per client IP; also the starts of passwordless login and password reset per address",
  },
  RATE_LIMIT_PREFIX: {
    group: "protection",
    default: "20/1h",
    parse: rate,
    description: "sends per number range (the E.164 number without its last four digits)",
  },
  RATE_LIMIT_GLOBAL: { group: "protection", default: "1000/1h", parse: rate, description: "sends by the whole service" },
  RATE_LIMIT_VERIFY: {
    group: "protection",
    default: "10/1h",
    parse: rate,
    description: "verification tries per number and purpose, whatever the challenge",
  },
  ALLOWED_COUNTRIES: {
    group: "protection",
    shownDefault: "unset (all)",
    example: "CR,US",
    parse: list(rewritten(upperCase, entry(isSupportedCountry, "is not an ISO 3166 country code (CR, US, ES)."))),
    description: "the countries codes may be sent to, as ISO codes, comma-separated",
  },
  BLOCKED_PREFIXES: {
    group: "protection",
    example: "+882,+883",
    parse: list(entry(/^\+\d{1,14}$/, "is not an E.164 prefix such as +882 or +5069.")),
    description: "E.164 prefixes refused, comma-separated",
  },
  BLOCKED_NUMBER_TYPES: {
    group: "protection",
    default: "PREMIUM_RATE,SHARED_COST,PAGER,UNKNOWN",
    parse: list(
      rewritten(
        upperCase,
        entry(
          (type) => type === "NONE" || (NUMBER_TYPES as readonly string[]).includes(type),
          `is not a number type: use ${NUMBER_TYPES.join(", ")} or none.`,
        ),
      ),
    ),
    description:
      "number types refused (libphonenumber's: `PREMIUM_RATE`, `SHARED_COST`, `PAGER`, `VOIP`, `TOLL_FREE`, `UNKNOWN`…), or `none`",
  },
  SAFE_NUMBERS: {
    group: "protection",
    example: "+50688887777",
    parse: list(safeNumber),
    description: "numbers that always pass the destination rules and the conversion breaker, comma-separated",
  },
  CONVERSION_BREAKER_MIN_SENDS: {
    group: "protection",
    default: "20",
    parse: (raw, name) =>
      /^\d+$/.test(raw) ? Number(raw) : invalid(`${name}=${quote(raw)} is not a whole number (0 turns the breaker off).`),
    description: "conversion breaker: at least this many sends to a country or range in the last complete window (`0` turns it off)…",
  },
  CONVERSION_BREAKER_MIN_RATE: {
    group: "protection",
    default: "10",
    parse: (raw, name) =>
      /^\d+(\.\d+)?$/.test(raw) && Number(raw) <= 100 ? Number(raw) : invalid(`${name}=${quote(raw)} is not a percentage from 0 to 100.`),
    description: "…with fewer than this percentage verified…",
  },
  CONVERSION_BREAKER_WINDOW: { group: "protection", default: "1h", parse: duration, description: "…judged over windows of this length…" },
  CONVERSION_BREAKER_PAUSE: { group: "protection", default: "1h", parse: duration, description: "…pause sends there for this long" },
  SMS_BUDGET_USD: {
    group: "protection",
    example: "14.2747",
    parse: (raw, name) =>
      /^\d+(\.\d{1,6})?$/.test(raw) && Number(raw) > 0
        ? Number(raw)
        : invalid(`${name}=${quote(raw)} is not an amount of dollars greater than 0 (for example 14.2747).`),
    description: "spend cap in US dollars; unset, no cap",
  },
  SMS_BUDGET_PERIOD: {
    group: "protection",
    default: "month",
    parse: rewritten((raw) => raw.toLowerCase(), oneOf(["day", "month", "total"], "a period: use day, month or total")),
    description: "the spend cap's period: `day`, `month` or `total`",
  },
  SMS_PRICES_FILE: {
    group: "protection",
    example: "prices.json",
    parse: pricesFile,
    description:
      'a JSON object of estimated prices per SMS in dollars by ISO country (`{"CR": 0.057, "default": 0.1}`), overriding the built-in table',
  },

  TWILIO_WHATSAPP_FROM: {
    group: "channels",
    shownDefault: "`whatsapp:` + `TWILIO_PHONE_NUMBER`",
    example: "whatsapp:+14155238886",
    parse: checked(
      /^whatsapp:\+[1-9]\d{6,14}$/,
      (name, raw) => `${name}=${quote(raw)} must be whatsapp: followed by an E.164 number (whatsapp:+14155238886).`,
    ),
    description: "the WhatsApp sender",
  },
  TWILIO_WHATSAPP_CONTENT_SID: {
    group: "channels",
    parse: sid("HX", " (a Content Template SID)"),
    description: "an approved WhatsApp authentication template (`HX…`), sent with the code as variable 1",
  },
  CHANNEL_FALLBACK: {
    group: "channels",
    example: "whatsapp:sms",
    parse: list(channel, { separator: ":", keepBlank: true }),
    description: "the order of channels to try when one refuses or fails at send time, separated by `:`",
  },
  SMTP_URL: {
    group: "channels",
    secret: true,
    parse: checked(
      (raw) => URL.canParse(raw) && ["smtp:", "smtps:"].includes(new URL(raw).protocol),
      (name) => `${name} must be smtp://user:password@host:587 or smtps://…:465.`,
    ),
    description: "the email channel's SMTP server: `smtp://user:pass@host:587` or `smtps://…:465`",
  },
  EMAIL_FROM: {
    group: "channels",
    example: "Parque Marino <no-reply@example.com>",
    parse: checked(/@[^@\s>]+\.[^@\s>]+>?$/, (name, raw) => `${name}=${quote(raw)} is not an address or Name <address>.`),
    description: "the email sender, an address or `Name <address>` (required with `SMTP_URL`)",
  },

  DEFAULT_LOCALE: {
    group: "messages",
    default: "en",
    parse: localeTag,
    description: "the messages' language when the request, Accept-Language and the number's country say nothing usable",
  },
  TEMPLATES_DIR: {
    group: "messages",
    example: "templates",
    parse: templatesDir,
    description: 'a folder of `<locale>.json` files overriding the built-in texts (`{"sms": {"login": "…{code}…{minutes}…"}}`)',
  },
  WEBOTP_DOMAIN: {
    group: "messages",
    example: "example.com",
    parse: checked(
      /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/i,
      (name, raw) => `${name}=${quote(raw)} is not a host name such as example.com (no scheme, no path).`,
    ),
    description: "adds `@<domain> #<code>` as the SMS's last line, for browser autofill (WebOTP)",
  },

  RETENTION_DAYS: {
    group: "operations",
    default: "30",
    parse: integer(1, 3650),
    description:
      "whole UTC days older than this are rolled up for the reports, then their codes, refusals and challenges deleted (hourly, and `vericode purge`)",
  },
  METRICS_TOKEN: {
    group: "operations",
    secret: true,
    parse: checked(
      (raw) => raw.length >= 16,
      (name) => `${name} is too short: use at least 16 characters (openssl rand -hex 24).`,
    ),
    description: "the bearer token `GET /metrics` asks for (16+ characters); unset leaves it open (keep it off the public network then)",
  },

  VERIFY_ACCOUNT_SID: {
    group: "verify",
    example: "AC0123456789abcdef0123456789abcdef",
    parse: checked(/^AC[0-9a-fA-F]{32}$/, (name) => `${name} is AC followed by 32 hex digits, as a Twilio account sid.`),
    description:
      "the account sid the `/v2` API (Twilio Verify v2) accepts in HTTP Basic auth; with `VERIFY_AUTH_TOKEN` it turns `/v2` on (off while unset)",
  },
  VERIFY_AUTH_TOKEN: {
    group: "verify",
    secret: true,
    parse: checked(
      (raw) => raw.length >= 32,
      (name) => `${name} is too short: use at least 32 characters (openssl rand -hex 16).`,
    ),
    description: "the auth token paired with `VERIFY_ACCOUNT_SID` (32+ characters)",
  },
  VERIFY_API_KEYS: {
    group: "verify",
    secret: true,
    parse: list(verifyApiKey),
    description:
      "API keys for the `/v2` API, as Twilio's: `SK…:secret` pairs separated by commas (Basic auth with the key's sid and secret)",
  },
});
