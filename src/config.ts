import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseEnv } from "node:util";
import type { CountryCode } from "libphonenumber-js/max";
import type { ChannelName } from "./channels/channel.js";
import { type Environment, EnvReader } from "./config/env-reader.js";
import { readProtection } from "./config/protection.js";
import { type DatabaseConfig, RESEND_COOLDOWN_MAX_SECONDS, VARIABLES as V } from "./config/variables.js";
import { ConfigError } from "./errors.js";
import type { SmsTemplates } from "./i18n/templates.js";
import type { ProtectionConfig } from "./limits/settings.js";
import { normalisePhone } from "./phone.js";
import { DEFAULT_KEY_ID, type OtpKey } from "./records.js";

export type { Environment } from "./config/env-reader.js";
export type { DatabaseConfig } from "./config/variables.js";

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
    /** The deadline of a JWKS fetch (JWT_JWKS_TIMEOUT_MS). */
    jwksTimeoutMs: number;
    issuer: string;
    audience: string;
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
  };
  otp: {
    /** The keys of the codes' HMAC (OTP_SECRETS, or OTP_SECRET as `default`): the first makes new codes, all verify. */
    keys: readonly OtpKey[];
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
  /** The Twilio Verify v2-compatible API's credentials; null while it is off. */
  verify: { accountSid: string; authToken: string; apiKeys: ReadonlyMap<string, string> } | null;
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

/**
 * Reads the environment (and `.env`) once into a validated Config, or throws ConfigError listing every problem.
 * Every variable, its default and its parser is declared in src/config/variables.ts; what follows resolves
 * the values that depend on one another, in named steps.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = new EnvReader({ ...readEnvFile(options.envFile ?? ".env"), ...(options.env ?? process.env) });
  const server = readServer(env);
  const storage = readStorage(env);
  const secrets = readSecrets(env, server.production, storage.dataDir);
  const jwt = readJwt(env, secrets.jwtSecret);
  const otp = readOtp(env);
  const protection = readProtection(env);
  const delivery = readDelivery(env);
  const defaultCountry = env.read(V.DEFAULT_COUNTRY) ?? null;
  const testNumbers = readTestNumbers(env, otp.length, server.production);
  const sms = readSms(env, server.production, options.twilioTimeoutMs);
  const testPhoneNumber = readTestPhoneNumber(env, defaultCountry);
  const requirePhoneVerification = env.read(V.REQUIRE_PHONE_VERIFICATION);
  const retentionDays = env.read(V.RETENTION_DAYS);
  const metricsToken = env.read(V.METRICS_TOKEN) ?? null;
  const webDemo = env.read(V.WEB_DEMO) ?? !server.production;
  const verify = readVerify(env);
  if (env.problems.length > 0) throw new ConfigError(env.problems);

  return {
    ...server,
    ...storage,
    jwt,
    otp: { keys: secrets.otpKeys, ...otp, testNumbers },
    ...sms,
    defaultCountry,
    testPhoneNumber,
    requirePhoneVerification,
    webDemo,
    retentionDays,
    metricsToken,
    verify,
    protection,
    ...delivery,
    warnings: env.warnings,
  };
}

/** The /v2 API's credentials: both VERIFY_ACCOUNT_SID and VERIFY_AUTH_TOKEN, or neither (it is off). */
function readVerify(env: EnvReader): Config["verify"] {
  const accountSid = env.read(V.VERIFY_ACCOUNT_SID) ?? null;
  const authToken = env.read(V.VERIFY_AUTH_TOKEN) ?? null;
  const apiKeys = env.read(V.VERIFY_API_KEYS) ?? [];
  if (accountSid === null && authToken === null) {
    if (apiKeys.length > 0)
      env.problems.push("VERIFY_API_KEYS needs VERIFY_ACCOUNT_SID and VERIFY_AUTH_TOKEN: the keys belong to that account.");
    return null;
  }
  if (accountSid === null || authToken === null) {
    env.problems.push("Set VERIFY_ACCOUNT_SID and VERIFY_AUTH_TOKEN together: the /v2 API takes both (or neither, and stays off).");
    return null;
  }
  return { accountSid, authToken, apiKeys: new Map(apiKeys.map((key) => [key.sid, key.secret])) };
}

type ServerConfig = Pick<Config, "nodeEnv" | "production" | "port" | "host" | "logLevel" | "publicBaseUrl">;

function readServer(env: EnvReader): ServerConfig {
  const nodeEnv = env.read(V.NODE_ENV);
  const port = env.read(V.PORT);
  const host = env.read(V.HOST);
  const logLevel = env.read(V.LOG_LEVEL);
  // The default is checked like a value: HOST=:: makes no URL, and says so.
  const derived = `http://${host}:${port}`;
  const publicBaseUrl = env.read(V.PUBLIC_BASE_URL, derived) ?? derived;
  return { nodeEnv, production: nodeEnv === "production", port, host, logLevel, publicBaseUrl };
}

function readStorage(env: EnvReader): Pick<Config, "database" | "redisUrl" | "redisKeyPrefix" | "dataDir"> {
  const database = env.read(V.DATABASE_URL);
  const dataDir = database.kind === "sqlite" && database.path !== ":memory:" ? dirname(database.path) : resolve("data");
  const redisUrl = env.read(V.REDIS_URL) ?? null;
  return { database, redisUrl, redisKeyPrefix: env.read(V.REDIS_KEY_PREFIX), dataDir };
}

/**
 * JWT_SECRET and the codes' keys (OTP_SECRETS, or OTP_SECRET as the one key `default`): required in
 * production; in development, generated once when missing.
 */
function readSecrets(env: EnvReader, production: boolean, dataDir: string): { jwtSecret: string; otpKeys: OtpKey[] } {
  const keyed = env.isSet(V.OTP_SECRETS);
  if (keyed && env.isSet(V.OTP_SECRET)) {
    env.problem("Set OTP_SECRETS or OTP_SECRET, not both: OTP_SECRET=<secret> is the same as OTP_SECRETS=default:<secret>.");
  }
  if (production) {
    if (!env.isSet(V.JWT_SECRET)) env.problem("JWT_SECRET is required when NODE_ENV=production (at least 32 bytes).");
    if (!keyed && !env.isSet(V.OTP_SECRET)) env.problem("OTP_SECRET is required when NODE_ENV=production (at least 32 bytes).");
  }
  const jwtSecret = env.read(V.JWT_SECRET);
  const otpSecret = env.read(V.OTP_SECRET);
  const otpKeys = env.read(V.OTP_SECRETS) ?? (otpSecret === undefined ? undefined : [{ id: DEFAULT_KEY_ID, secret: otpSecret }]);
  if (jwtSecret !== undefined && otpKeys !== undefined) return { jwtSecret, otpKeys };
  // A problem already refuses the configuration: write no file for secrets that will never be used.
  if (env.problems.length > 0) return { jwtSecret: jwtSecret ?? "", otpKeys: otpKeys ?? [] };
  const generated = developmentSecrets(dataDir);
  env.warn(`JWT_SECRET or OTP_SECRET is not set: using development secrets kept in ${generated.file}. Set both before production.`);
  return { jwtSecret: jwtSecret ?? generated.jwtSecret, otpKeys: otpKeys ?? [{ id: DEFAULT_KEY_ID, secret: generated.otpSecret }] };
}

/** The tokens vericode issues (with `secret`) and accepts (also an external issuer's, by key or JWKS). */
function readJwt(env: EnvReader, secret: string): Config["jwt"] {
  return {
    secret,
    publicKey: env.read(V.JWT_PUBLIC_KEY) ?? null,
    jwksUrl: env.read(V.JWT_JWKS_URL) ?? null,
    jwksTimeoutMs: env.read(V.JWT_JWKS_TIMEOUT_MS),
    issuer: env.read(V.JWT_ISSUER),
    audience: env.read(V.JWT_AUDIENCE),
    accessTtlSeconds: 15 * 60,
    refreshTtlSeconds: 14 * 24 * 60 * 60,
  };
}

function readOtp(env: EnvReader): Omit<Config["otp"], "keys" | "testNumbers"> {
  const length = env.read(V.OTP_LENGTH);
  const ttlSeconds = env.read(V.OTP_TTL_SECONDS);
  const maxAttempts = env.read(V.OTP_MAX_ATTEMPTS);
  const resendCooldownSeconds = env.read(V.OTP_RESEND_COOLDOWN_SECONDS);
  const resendCooldownMaxSeconds =
    env.read(V.OTP_RESEND_COOLDOWN_MAX_SECONDS) ?? Math.max(RESEND_COOLDOWN_MAX_SECONDS, resendCooldownSeconds);
  if (resendCooldownMaxSeconds < resendCooldownSeconds) {
    env.problem(
      `OTP_RESEND_COOLDOWN_MAX_SECONDS=${resendCooldownMaxSeconds} is below OTP_RESEND_COOLDOWN_SECONDS=${resendCooldownSeconds}: the cooldown only grows.`,
    );
  }
  return { length, ttlSeconds, maxAttempts, resendCooldownSeconds, resendCooldownMaxSeconds };
}

/** The channels beyond SMS and the messages' language and texts. */
function readDelivery(env: EnvReader): Pick<Config, "email" | "channelFallback" | "messages"> {
  const defaultLocale = env.read(V.DEFAULT_LOCALE);
  const email = readEmail(env);
  const channelFallback: ChannelName[] = env.read(V.CHANNEL_FALLBACK) ?? [];
  const overrides: Record<string, Partial<SmsTemplates>> = env.read(V.TEMPLATES_DIR) ?? {};
  const webOtpDomain = env.read(V.WEBOTP_DOMAIN) ?? null;
  return { email, channelFallback, messages: { defaultLocale, overrides, webOtpDomain } };
}

/** SMTP_URL turns the email channel on and then needs EMAIL_FROM. */
function readEmail(env: EnvReader): Config["email"] {
  if (!env.isSet(V.SMTP_URL)) return null;
  const url = env.read(V.SMTP_URL) ?? "";
  if (!env.isSet(V.EMAIL_FROM)) env.problem("EMAIL_FROM is required with SMTP_URL: the sender, an address or Name <address>.");
  return { url, from: env.read(V.EMAIL_FROM) ?? "" };
}

/** OTP_TEST_NUMBERS: `+E164=code` pairs whose codes have OTP_LENGTH digits; refused in production. */
function readTestNumbers(env: EnvReader, length: number, production: boolean): Map<string, string> {
  const numbers = new Map<string, string>();
  const raw = env.read(V.OTP_TEST_NUMBERS);
  if (raw === undefined) return numbers;
  if (production) {
    env.problem("OTP_TEST_NUMBERS is refused when NODE_ENV=production: fixed codes are for development and tests only.");
    return numbers;
  }
  for (const entry of raw.split(",")) {
    const [phone = "", code = ""] = entry.split("=").map((part) => part.trim());
    const e164 = normalisePhone(phone, null);
    if (e164 === null || !new RegExp(`^\\d{${length}}$`).test(code)) {
      env.problem(
        `OTP_TEST_NUMBERS entry ${JSON.stringify(entry.trim())} is not allowed: expected +E164=code with a ${length}-digit code.`,
      );
      continue;
    }
    numbers.set(e164, code);
  }
  return numbers;
}

/** The SMS provider, Twilio when its account is configured, and the checks they need together. */
function readSms(env: EnvReader, production: boolean, twilioTimeoutMs: number | undefined): Pick<Config, "smsProvider" | "twilio"> {
  const twilio = readTwilio(env, twilioTimeoutMs);
  // A provider that is not one counts as console, so production names that too.
  const smsProvider = env.read(V.SMS_PROVIDER, env.isSet(V.TWILIO_ACCOUNT_SID) ? "twilio" : "console") ?? "console";
  if (smsProvider === "twilio" && twilio === null && !env.problems.some((p) => p.startsWith("TWILIO"))) {
    env.problem("SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET).");
  }
  if (production && smsProvider === "console") {
    env.problem("SMS_PROVIDER=console is refused when NODE_ENV=production: configure Twilio (TWILIO_ACCOUNT_SID…).");
  }
  return { smsProvider, twilio: smsProvider === "twilio" ? twilio : null };
}

function readTestPhoneNumber(env: EnvReader, defaultCountry: CountryCode | null): string | null {
  const raw = env.read(V.TEST_PHONE_NUMBER);
  if (raw === undefined) return null;
  const e164 = normalisePhone(raw, defaultCountry);
  if (e164 === null) env.problem(`TEST_PHONE_NUMBER=${JSON.stringify(raw)} is not a valid phone number in E.164 form (+50688887777).`);
  return e164;
}

function readEnvFile(file: string | false): Environment {
  if (file === false || !existsSync(file)) return {};
  return parseEnv(readFileSync(file, "utf8")) as Environment;
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

/** Twilio's account, credentials and senders; null when TWILIO_ACCOUNT_SID is unset. */
function readTwilio(env: EnvReader, timeoutMs: number | undefined): TwilioConfig | null {
  if (!env.isSet(V.TWILIO_ACCOUNT_SID)) return null;
  const accountSid = env.read(V.TWILIO_ACCOUNT_SID) ?? "";
  const credentials = readTwilioCredentials(env, accountSid);
  const phoneNumber = env.read(V.TWILIO_PHONE_NUMBER) ?? null;
  const messagingServiceSid = env.read(V.TWILIO_MESSAGING_SERVICE_SID) ?? null;
  if (!env.isSet(V.TWILIO_PHONE_NUMBER) && !env.isSet(V.TWILIO_MESSAGING_SERVICE_SID)) {
    env.problem("Twilio needs a sender: set TWILIO_PHONE_NUMBER or TWILIO_MESSAGING_SERVICE_SID.");
  }
  return {
    accountSid,
    ...credentials,
    whatsappFrom: env.read(V.TWILIO_WHATSAPP_FROM) ?? null,
    whatsappContentSid: env.read(V.TWILIO_WHATSAPP_CONTENT_SID) ?? null,
    phoneNumber,
    messagingServiceSid,
    apiBaseUrl: env.read(V.TWILIO_API_BASE_URL) ?? null,
    timeoutMs: timeoutMs ?? 10_000,
  };
}

/** The account SID and auth token, or an API key and its secret (the auth token still signs callbacks). */
function readTwilioCredentials(env: EnvReader, accountSid: string): Pick<TwilioConfig, "username" | "password" | "authToken"> {
  const authToken = env.read(V.TWILIO_AUTH_TOKEN) ?? null;
  if (env.isSet(V.TWILIO_API_KEY) || env.isSet(V.TWILIO_API_SECRET)) {
    const apiKey = env.read(V.TWILIO_API_KEY);
    const apiSecret = env.read(V.TWILIO_API_SECRET);
    if (apiKey === undefined || apiSecret === undefined || !/^SK[0-9a-fA-F]{32}$/.test(apiKey)) {
      env.problem("TWILIO_API_KEY (SK + 32 hexadecimal characters) and TWILIO_API_SECRET must be set together.");
    }
    return { username: apiKey ?? "", password: apiSecret ?? "", authToken };
  }
  if (authToken === null) {
    env.problem("TWILIO_AUTH_TOKEN is required with TWILIO_ACCOUNT_SID (or TWILIO_API_KEY with TWILIO_API_SECRET).");
  }
  return { username: accountSid, password: authToken ?? "", authToken };
}
