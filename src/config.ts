import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseEnv } from "node:util";
import { type CountryCode, isSupportedCountry } from "libphonenumber-js/max";
import { CHANNEL_NAMES, type ChannelName, isChannelName } from "./channels/channel.js";
import { ConfigError } from "./errors.js";
import { readTemplatesDir } from "./i18n/messages.js";
import type { SmsTemplates } from "./i18n/templates.js";
import { type ProtectionConfig, readProtection } from "./limits/settings.js";
import { normalisePhone } from "./phone.js";

export type Environment = Record<string, string | undefined>;

export type DatabaseConfig = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

export interface TwilioConfig {
  accountSid: string;
  /** Basic-auth user and password: the account SID and auth token, or an API key SID and its secret. */
  username: string;
  password: string;
  /** The account's auth token, which signs status callbacks (null with an API key only: callbacks are then refused). */
  authToken: string | null;
  /** WhatsApp sender, `whatsapp:+…` (null: `whatsapp:` + phoneNumber). */
  whatsappFrom: string | null;
  /** Approved WhatsApp authentication template (`HX…`); null sends the text. */
  whatsappContentSid: string | null;
  phoneNumber: string | null;
  messagingServiceSid: string | null;
  /** Base URL every SDK request goes to instead of Twilio's own (a local Twilio-compatible server). */
  apiBaseUrl: string | null;
  /** Deadline of one send, retries of a 429 included. */
  timeoutMs: number;
}

/** The resolved configuration: nothing optional past this point, every default applied here. */
export interface Config {
  nodeEnv: string;
  production: boolean;
  port: number;
  host: string;
  logLevel: string;
  publicBaseUrl: string;
  database: DatabaseConfig;
  redisUrl: string | null;
  /** Prefix of every Redis key vericode writes (several deployments may share one Redis). */
  redisKeyPrefix: string;
  dataDir: string;
  jwt: {
    secret: string;
    publicKey: string | null;
    jwksUrl: string | null;
    issuer: string;
    audience: string;
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
  };
  otp: {
    secret: string;
    length: number;
    ttlSeconds: number;
    maxAttempts: number;
    resendCooldownSeconds: number;
    resendCooldownMaxSeconds: number;
    /** E.164 number → fixed code, never sent and never rate-limited (development and tests only). */
    testNumbers: ReadonlyMap<string, string>;
  };
  smsProvider: "console" | "twilio";
  twilio: TwilioConfig | null;
  defaultCountry: CountryCode | null;
  testPhoneNumber: string | null;
  /** REQUIRE_PHONE_VERIFICATION: accounts without a verified number are kept from everything but verifying it. */
  requirePhoneVerification: boolean;
  /** RETENTION_DAYS: codes, refusals and challenges older than this are deleted (`vericode purge`, hourly job). */
  retentionDays: number;
  /** METRICS_TOKEN: the bearer token `/metrics` asks for; null leaves it open. */
  metricsToken: string | null;
  /** WEB_DEMO: serve the HTML demo at `/` (default: on except in production). */
  webDemo: boolean;
  /** Rate limits, fraud rules and the spend budget. */
  protection: ProtectionConfig;
  /** The email channel's SMTP server and sender (SMTP_URL, EMAIL_FROM); null when not configured. */
  email: { url: string; from: string } | null;
  /** CHANNEL_FALLBACK: the order of channels to try when one is refused or fails at send time. */
  channelFallback: ChannelName[];
  messages: {
    defaultLocale: string;
    /** TEMPLATES_DIR's templates, by locale. */
    overrides: Record<string, Partial<SmsTemplates>>;
    webOtpDomain: string | null;
  };
  /** Things worth a warning at start-up (generated development secrets…). */
  warnings: string[];
}

export interface LoadConfigOptions {
  /** Variables to read; defaults to `process.env`. */
  env?: Environment;
  /** A dotenv file whose values apply under the environment's; `false` reads none. @default ".env" */
  envFile?: string | false;
  /** Overrides applied after resolution (library options, tests). */
  twilioTimeoutMs?: number;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Reads the environment (and `.env`) once into a validated Config, or throws ConfigError listing every problem. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env: Environment = { ...readEnvFile(options.envFile ?? ".env"), ...(options.env ?? process.env) };
  const problems: string[] = [];
  const warnings: string[] = [];
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name}=${JSON.stringify(raw)} is not allowed: expected a whole number from ${min} to ${max}.`);
      return fallback;
    }
    return Number(raw);
  };

  const nodeEnv = get("NODE_ENV") ?? "development";
  const production = nodeEnv === "production";
  const port = int("PORT", 3000, 0, 65535);
  const host = get("HOST") ?? "127.0.0.1";
  const logLevel = get("LOG_LEVEL") ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL=${JSON.stringify(logLevel)} is not a level: use one of ${LOG_LEVELS.join(", ")}.`);
  }
  const publicBaseUrl = (get("PUBLIC_BASE_URL") ?? `http://${host}:${port}`).replace(/\/+$/, "");
  if (!isHttpUrl(publicBaseUrl)) problems.push(`PUBLIC_BASE_URL=${JSON.stringify(publicBaseUrl)} is not an http(s) URL.`);

  const database = parseDatabaseUrl(get("DATABASE_URL") ?? "sqlite:data/vericode.db", problems);
  const dataDir = database.kind === "sqlite" && database.path !== ":memory:" ? dirname(database.path) : resolve("data");

  const redisUrl = get("REDIS_URL") ?? null;
  if (redisUrl !== null && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push(`REDIS_URL=${JSON.stringify(redisUrl)} must start with redis:// or rediss://.`);
  }

  let jwtSecret = get("JWT_SECRET");
  let otpSecret = get("OTP_SECRET");
  if (production) {
    if (jwtSecret === undefined) problems.push("JWT_SECRET is required when NODE_ENV=production (at least 32 bytes).");
    if (otpSecret === undefined) problems.push("OTP_SECRET is required when NODE_ENV=production (at least 32 bytes).");
  }
  for (const [name, value] of [
    ["JWT_SECRET", jwtSecret],
    ["OTP_SECRET", otpSecret],
  ] as const) {
    if (value !== undefined && Buffer.byteLength(value) < 32) {
      problems.push(`${name} is too short: it must be at least 32 bytes (for example: openssl rand -hex 32).`);
    }
  }
  if (!production && (jwtSecret === undefined || otpSecret === undefined) && problems.length === 0) {
    const generated = developmentSecrets(dataDir);
    jwtSecret ??= generated.jwtSecret;
    otpSecret ??= generated.otpSecret;
    warnings.push(`JWT_SECRET or OTP_SECRET is not set: using development secrets kept in ${generated.file}. Set both before production.`);
  }

  const jwtPublicKey = readPublicKey(get("JWT_PUBLIC_KEY"), problems);
  const jwksUrl = get("JWT_JWKS_URL") ?? null;
  if (jwksUrl !== null && !isHttpUrl(jwksUrl)) problems.push(`JWT_JWKS_URL=${JSON.stringify(jwksUrl)} is not an http(s) URL.`);

  const otpLength = int("OTP_LENGTH", 6, 4, 10);
  const ttlSeconds = int("OTP_TTL_SECONDS", 600, 30, 86_400);
  const maxAttempts = int("OTP_MAX_ATTEMPTS", 5, 1, 100);
  const resendCooldownSeconds = int("OTP_RESEND_COOLDOWN_SECONDS", 30, 0, 86_400);
  const resendCooldownMaxSeconds = int("OTP_RESEND_COOLDOWN_MAX_SECONDS", Math.max(300, resendCooldownSeconds), 0, 86_400);
  if (resendCooldownMaxSeconds < resendCooldownSeconds) {
    problems.push(
      `OTP_RESEND_COOLDOWN_MAX_SECONDS=${resendCooldownMaxSeconds} is below OTP_RESEND_COOLDOWN_SECONDS=${resendCooldownSeconds}: the cooldown only grows.`,
    );
  }
  const protection = readProtection(get, problems);
  const defaultLocale = get("DEFAULT_LOCALE") ?? "en";
  if (!/^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$/.test(defaultLocale)) {
    problems.push(`DEFAULT_LOCALE=${JSON.stringify(defaultLocale)} is not a language tag such as en, es or es-CR.`);
  }
  const smtpUrl = get("SMTP_URL");
  const emailFrom = get("EMAIL_FROM");
  let email: Config["email"] = null;
  if (smtpUrl !== undefined) {
    let valid = false;
    try {
      valid = ["smtp:", "smtps:"].includes(new URL(smtpUrl).protocol);
    } catch {}
    if (!valid) problems.push("SMTP_URL must be smtp://user:password@host:587 or smtps://…:465.");
    if (emailFrom === undefined) problems.push("EMAIL_FROM is required with SMTP_URL: the sender, an address or Name <address>.");
    else if (!/@[^@\s>]+\.[^@\s>]+>?$/.test(emailFrom))
      problems.push(`EMAIL_FROM=${JSON.stringify(emailFrom)} is not an address or Name <address>.`);
    email = { url: smtpUrl, from: emailFrom ?? "" };
  }
  const fallbackRaw = get("CHANNEL_FALLBACK");
  const channelFallback = fallbackRaw === undefined ? [] : fallbackRaw.split(":").map((name) => name.trim());
  for (const name of channelFallback) {
    if (!isChannelName(name)) {
      problems.push(
        `CHANNEL_FALLBACK entry ${JSON.stringify(name)} is not a channel: use ${CHANNEL_NAMES.join(", ")} separated by ':' (whatsapp:sms).`,
      );
    }
  }
  const templatesDir = get("TEMPLATES_DIR");
  const overrides = templatesDir === undefined ? {} : readTemplatesDir(resolve(templatesDir), problems);
  const webOtpDomain = get("WEBOTP_DOMAIN") ?? null;
  if (
    webOtpDomain !== null &&
    !/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/i.test(webOtpDomain)
  ) {
    problems.push(`WEBOTP_DOMAIN=${JSON.stringify(webOtpDomain)} is not a host name such as example.com (no scheme, no path).`);
  }

  const defaultCountryRaw = get("DEFAULT_COUNTRY")?.toUpperCase();
  let defaultCountry: CountryCode | null = null;
  if (defaultCountryRaw !== undefined) {
    if (isSupportedCountry(defaultCountryRaw)) defaultCountry = defaultCountryRaw;
    else problems.push(`DEFAULT_COUNTRY=${JSON.stringify(defaultCountryRaw)} is not an ISO 3166 country code (for example CR, US, ES).`);
  }

  const testNumbers = parseTestNumbers(get("OTP_TEST_NUMBERS"), otpLength, production, problems);

  const twilio = readTwilio(get, problems, options.twilioTimeoutMs);
  const providerRaw = get("SMS_PROVIDER") ?? (get("TWILIO_ACCOUNT_SID") !== undefined ? "twilio" : "console");
  let smsProvider: Config["smsProvider"] = "console";
  if (providerRaw === "twilio" || providerRaw === "console") smsProvider = providerRaw;
  else problems.push(`SMS_PROVIDER=${JSON.stringify(providerRaw)} is not a provider: use twilio or console.`);
  if (smsProvider === "twilio" && twilio === null && !problems.some((p) => p.startsWith("TWILIO"))) {
    problems.push("SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET).");
  }
  if (production && smsProvider === "console") {
    problems.push("SMS_PROVIDER=console is refused when NODE_ENV=production: configure Twilio (TWILIO_ACCOUNT_SID…).");
  }

  const testPhone = get("TEST_PHONE_NUMBER");
  const testPhoneNumber = testPhone === undefined ? null : normalisePhone(testPhone, defaultCountry);
  if (testPhone !== undefined && testPhoneNumber === null) {
    problems.push(`TEST_PHONE_NUMBER=${JSON.stringify(testPhone)} is not a valid phone number in E.164 form (+50688887777).`);
  }

  const requireRaw = get("REQUIRE_PHONE_VERIFICATION") ?? "false";
  if (requireRaw !== "true" && requireRaw !== "false") {
    problems.push(`REQUIRE_PHONE_VERIFICATION=${JSON.stringify(requireRaw)} is not allowed: use true or false.`);
  }

  const retentionDays = int("RETENTION_DAYS", 30, 1, 3650);
  const metricsToken = get("METRICS_TOKEN") ?? null;
  if (metricsToken !== null && metricsToken.length < 16) {
    problems.push("METRICS_TOKEN is too short: use at least 16 characters (openssl rand -hex 24).");
  }

  const webDemoRaw = get("WEB_DEMO") ?? (production ? "false" : "true");
  if (webDemoRaw !== "true" && webDemoRaw !== "false") {
    problems.push(`WEB_DEMO=${JSON.stringify(webDemoRaw)} is not allowed: use true or false.`);
  }

  if (problems.length > 0) throw new ConfigError(problems);

  return {
    nodeEnv,
    production,
    port,
    host,
    logLevel,
    publicBaseUrl,
    database,
    redisUrl,
    redisKeyPrefix: get("REDIS_KEY_PREFIX") ?? "vericode:rl:",
    dataDir,
    jwt: {
      secret: jwtSecret as string,
      publicKey: jwtPublicKey,
      jwksUrl,
      issuer: get("JWT_ISSUER") ?? "vericode",
      audience: get("JWT_AUDIENCE") ?? "vericode",
      accessTtlSeconds: 15 * 60,
      refreshTtlSeconds: 14 * 24 * 60 * 60,
    },
    otp: {
      secret: otpSecret as string,
      length: otpLength,
      ttlSeconds,
      maxAttempts,
      resendCooldownSeconds,
      resendCooldownMaxSeconds,
      testNumbers,
    },
    smsProvider,
    twilio: smsProvider === "twilio" ? twilio : null,
    defaultCountry,
    testPhoneNumber,
    requirePhoneVerification: requireRaw === "true",
    webDemo: webDemoRaw === "true",
    retentionDays,
    metricsToken,
    protection,
    email,
    channelFallback: channelFallback.filter(isChannelName),
    messages: { defaultLocale, overrides, webOtpDomain },
    warnings,
  };
}

function readEnvFile(file: string | false): Environment {
  if (file === false || !existsSync(file)) return {};
  return parseEnv(readFileSync(file, "utf8")) as Environment;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

function parseDatabaseUrl(raw: string, problems: string[]): DatabaseConfig {
  if (raw.startsWith("sqlite:")) {
    const rest = raw.slice("sqlite:".length).replace(/^\/\//, "");
    if (rest === "") problems.push('DATABASE_URL="sqlite:" needs a file path, for example sqlite:data/vericode.db.');
    return { kind: "sqlite", path: rest === ":memory:" ? rest : resolve(rest || "data/vericode.db") };
  }
  if (raw.startsWith("postgres://") || raw.startsWith("postgresql://")) {
    try {
      new URL(raw);
    } catch {
      problems.push("DATABASE_URL is not a valid postgres:// URL.");
    }
    return { kind: "postgres", url: raw };
  }
  problems.push(
    `DATABASE_URL must be sqlite:<path> or postgres://user:pass@host:5432/db (got a value starting ${JSON.stringify(raw.slice(0, 12))}).`,
  );
  return { kind: "sqlite", path: resolve("data/vericode.db") };
}

function developmentSecrets(dataDir: string): { jwtSecret: string; otpSecret: string; file: string } {
  const file = join(dataDir, "dev-secrets.json");
  if (existsSync(file)) {
    const stored = JSON.parse(readFileSync(file, "utf8")) as { jwtSecret?: unknown; otpSecret?: unknown };
    if (typeof stored.jwtSecret === "string" && typeof stored.otpSecret === "string") {
      return { jwtSecret: stored.jwtSecret, otpSecret: stored.otpSecret, file };
    }
  }
  mkdirSync(dataDir, { recursive: true });
  const secrets = { jwtSecret: randomBytes(32).toString("hex"), otpSecret: randomBytes(32).toString("hex") };
  // Written once, readable by the owner only; the same secrets keep tokens and codes valid across restarts.
  writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(file, 0o600);
  return { ...secrets, file };
}

function readPublicKey(raw: string | undefined, problems: string[]): string | null {
  if (raw === undefined) return null;
  // Accept the PEM itself (with literal "\n" as .env files often carry it) or a path to a PEM file.
  const pem = raw.includes("-----BEGIN") ? raw.replace(/\\n/g, "\n") : existsSync(raw) ? readFileSync(raw, "utf8") : null;
  if (pem === null || !pem.includes("PUBLIC KEY-----")) {
    problems.push("JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----…) or the path of a file holding one.");
    return null;
  }
  return pem;
}

function parseTestNumbers(raw: string | undefined, length: number, production: boolean, problems: string[]): Map<string, string> {
  const numbers = new Map<string, string>();
  if (raw === undefined) return numbers;
  if (production) {
    problems.push("OTP_TEST_NUMBERS is refused when NODE_ENV=production: fixed codes are for development and tests only.");
    return numbers;
  }
  for (const entry of raw.split(",")) {
    const [phone = "", code = ""] = entry.split("=").map((part) => part.trim());
    const e164 = normalisePhone(phone, null);
    if (e164 === null || !new RegExp(`^\\d{${length}}$`).test(code)) {
      problems.push(
        `OTP_TEST_NUMBERS entry ${JSON.stringify(entry.trim())} is not allowed: expected +E164=code with a ${length}-digit code.`,
      );
      continue;
    }
    numbers.set(e164, code);
  }
  return numbers;
}

function readTwilio(get: (name: string) => string | undefined, problems: string[], timeoutMs: number | undefined): TwilioConfig | null {
  const accountSid = get("TWILIO_ACCOUNT_SID");
  if (accountSid === undefined) return null;
  if (!/^AC[0-9a-fA-F]{32}$/.test(accountSid)) {
    problems.push("TWILIO_ACCOUNT_SID must be AC followed by 32 hexadecimal characters.");
  }
  const authToken = get("TWILIO_AUTH_TOKEN");
  const apiKey = get("TWILIO_API_KEY");
  const apiSecret = get("TWILIO_API_SECRET");
  let username = accountSid;
  let password = authToken ?? "";
  if (apiKey !== undefined || apiSecret !== undefined) {
    if (apiKey === undefined || apiSecret === undefined || !/^SK[0-9a-fA-F]{32}$/.test(apiKey)) {
      problems.push("TWILIO_API_KEY (SK + 32 hexadecimal characters) and TWILIO_API_SECRET must be set together.");
    }
    username = apiKey ?? "";
    password = apiSecret ?? "";
  } else if (authToken === undefined) {
    problems.push("TWILIO_AUTH_TOKEN is required with TWILIO_ACCOUNT_SID (or TWILIO_API_KEY with TWILIO_API_SECRET).");
  }
  const phoneRaw = get("TWILIO_PHONE_NUMBER");
  const phoneNumber = phoneRaw === undefined ? null : normalisePhone(phoneRaw, null);
  if (phoneRaw !== undefined && phoneNumber === null) {
    problems.push(`TWILIO_PHONE_NUMBER=${JSON.stringify(phoneRaw)} is not a phone number in E.164 form (+15005550006).`);
  }
  const messagingServiceSid = get("TWILIO_MESSAGING_SERVICE_SID") ?? null;
  if (messagingServiceSid !== null && !/^MG[0-9a-fA-F]{32}$/.test(messagingServiceSid)) {
    problems.push("TWILIO_MESSAGING_SERVICE_SID must be MG followed by 32 hexadecimal characters.");
  }
  if (phoneRaw === undefined && messagingServiceSid === null) {
    problems.push("Twilio needs a sender: set TWILIO_PHONE_NUMBER or TWILIO_MESSAGING_SERVICE_SID.");
  }
  const whatsappFrom = get("TWILIO_WHATSAPP_FROM") ?? null;
  if (whatsappFrom !== null && !/^whatsapp:\+[1-9]\d{6,14}$/.test(whatsappFrom)) {
    problems.push(
      `TWILIO_WHATSAPP_FROM=${JSON.stringify(whatsappFrom)} must be whatsapp: followed by an E.164 number (whatsapp:+14155238886).`,
    );
  }
  const whatsappContentSid = get("TWILIO_WHATSAPP_CONTENT_SID") ?? null;
  if (whatsappContentSid !== null && !/^HX[0-9a-fA-F]{32}$/.test(whatsappContentSid)) {
    problems.push("TWILIO_WHATSAPP_CONTENT_SID must be HX followed by 32 hexadecimal characters (a Content Template SID).");
  }
  const apiBaseUrl = get("TWILIO_API_BASE_URL")?.replace(/\/+$/, "") ?? null;
  if (apiBaseUrl !== null && !isHttpUrl(apiBaseUrl)) {
    problems.push(`TWILIO_API_BASE_URL=${JSON.stringify(apiBaseUrl)} is not an http(s) URL.`);
  }
  return {
    accountSid,
    username,
    password,
    authToken: authToken ?? null,
    whatsappFrom,
    whatsappContentSid,
    phoneNumber,
    messagingServiceSid,
    apiBaseUrl,
    timeoutMs: timeoutMs ?? 10_000,
  };
}
