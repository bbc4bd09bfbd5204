import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { ConfigError } from "../src/errors.js";

const SECRETS = { JWT_SECRET: "j".repeat(32), OTP_SECRET: "o".repeat(32) };
const load = (env: Record<string, string>) => loadConfig({ env, envFile: false });

function problemsOf(env: Record<string, string>): string[] {
  try {
    load(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("configuration", () => {
  it("has the contract's defaults", () => {
    const config = load(SECRETS);
    expect(config).toMatchObject({
      port: 3000,
      host: "127.0.0.1",
      logLevel: "info",
      publicBaseUrl: "http://127.0.0.1:3000",
      database: { kind: "sqlite", path: expect.stringMatching(/data\/vericode\.db$/) },
      redisUrl: null,
      jwt: { issuer: "vericode", audience: "vericode" },
      otp: { length: 6, ttlSeconds: 600, maxAttempts: 5, resendCooldownSeconds: 30 },
      smsProvider: "console",
      twilio: null,
    });
  });

  it("lists every problem at once, naming the variable and what is allowed", () => {
    const problems = problemsOf({
      ...SECRETS,
      PORT: "http",
      OTP_LENGTH: "12",
      DATABASE_URL: "mysql://x",
      LOG_LEVEL: "loud",
      DEFAULT_COUNTRY: "XX",
    });
    expect(problems).toHaveLength(5);
    expect(problems[0]).toMatch(/^PORT="http" is not allowed: expected a whole number from 0 to 65535/);
    expect(problems.join("\n")).toMatch(/OTP_LENGTH="12".*4 to 10/);
    expect(problems.join("\n")).toMatch(/DATABASE_URL must be sqlite:<path> or postgres:\/\//);
  });

  it("has the protection defaults of docs/protection.md", () => {
    const { protection } = load(SECRETS);
    const hour = 3_600_000;
    expect(protection.limits).toEqual({
      challenge: { limit: 5, windowMs: 600_000 },
      number: { limit: 10, windowMs: hour },
      user: { limit: 20, windowMs: hour },
      ip: { limit: 20, windowMs: hour },
      prefix: { limit: 20, windowMs: hour },
      global: { limit: 1000, windowMs: hour },
      verify: { limit: 10, windowMs: hour },
    });
    expect([...protection.blockedNumberTypes]).toEqual(["PREMIUM_RATE", "SHARED_COST", "PAGER", "UNKNOWN"]);
    expect(protection).toMatchObject({
      allowedCountries: null,
      budget: null,
      trustedProxies: [],
      breaker: { minSends: 20, minConversion: 0.1, windowMs: hour, pauseMs: hour },
    });
    expect(load({ ...SECRETS }).otp.resendCooldownMaxSeconds).toBe(300);
    const tuned = load({
      ...SECRETS,
      RATE_LIMIT_IP: "off",
      SMS_BUDGET_USD: "14.2747",
      SMS_BUDGET_PERIOD: "total",
      ALLOWED_COUNTRIES: "cr,us",
    });
    expect(tuned.protection).toMatchObject({ limits: { ip: null }, budget: { capMicros: 14_274_700, period: "total" } });
    expect([...(tuned.protection.allowedCountries ?? [])]).toEqual(["CR", "US"]);
  });

  it("names every bad protection setting", () => {
    const problems = problemsOf({
      ...SECRETS,
      RATE_LIMIT_NUMBER: "ten per hour",
      ALLOWED_COUNTRIES: "CR,XX",
      BLOCKED_PREFIXES: "506",
      BLOCKED_NUMBER_TYPES: "PREMIUM,MOBILE",
      SAFE_NUMBERS: "12",
      SMS_BUDGET_USD: "-3",
      SMS_BUDGET_PERIOD: "week",
      TRUSTED_PROXIES: "proxy.local",
      CONVERSION_BREAKER_WINDOW: "soon",
      OTP_RESEND_COOLDOWN_MAX_SECONDS: "10",
    });
    const text = problems.join("\n");
    expect(problems).toHaveLength(10);
    expect(text).toMatch(/RATE_LIMIT_NUMBER="ten per hour" is not allowed: expected <count>\/<window>/);
    expect(text).toContain('ALLOWED_COUNTRIES entry "XX"');
    expect(text).toContain('BLOCKED_PREFIXES entry "506"');
    expect(text).toContain('BLOCKED_NUMBER_TYPES entry "PREMIUM"');
    expect(text).toContain('SAFE_NUMBERS entry "12"');
    expect(text).toContain('SMS_BUDGET_USD="-3"');
    expect(text).toContain('SMS_BUDGET_PERIOD="week"');
    expect(text).toContain('TRUSTED_PROXIES entry "proxy.local"');
    expect(text).toContain('CONVERSION_BREAKER_WINDOW="soon"');
    expect(text).toContain("OTP_RESEND_COOLDOWN_MAX_SECONDS=10 is below OTP_RESEND_COOLDOWN_SECONDS=30");
  });

  it("names every bad channel and language setting", () => {
    const text = problemsOf({
      ...SECRETS,
      WEBOTP_DOMAIN: "https://example.com/",
      SMTP_URL: "http://mail.example.com",
      CHANNEL_FALLBACK: "whatsapp:fax",
      DEFAULT_LOCALE: "english!",
    }).join("\n");
    expect(text).toContain('WEBOTP_DOMAIN="https://example.com/" is not a host name');
    expect(text).toContain("SMTP_URL must be smtp://");
    expect(text).toContain("EMAIL_FROM is required with SMTP_URL");
    expect(text).toContain('CHANNEL_FALLBACK entry "fax" is not a channel');
    expect(text).toContain('DEFAULT_LOCALE="english!" is not a language tag');
    expect(load({ ...SECRETS, CHANNEL_FALLBACK: "whatsapp:sms", WEBOTP_DOMAIN: "otp.example.com" })).toMatchObject({
      channelFallback: ["whatsapp", "sms"],
      messages: { webOtpDomain: "otp.example.com", defaultLocale: "en" },
    });
  });

  it("production refuses to start without secrets, with the console provider or with test numbers", () => {
    const problems = problemsOf({ NODE_ENV: "production", OTP_TEST_NUMBERS: "+15005550006=123456" });
    expect(problems.join("\n")).toContain("JWT_SECRET is required");
    expect(problems.join("\n")).toContain("OTP_SECRET is required");
    expect(problems.join("\n")).toContain("SMS_PROVIDER=console is refused");
    expect(problems.join("\n")).toContain("OTP_TEST_NUMBERS is refused");
  });

  it("refuses secrets shorter than 32 bytes", () => {
    expect(problemsOf({ JWT_SECRET: "short", OTP_SECRET: "o".repeat(32) })).toEqual([expect.stringContaining("JWT_SECRET is too short")]);
  });

  it("generates development secrets once, owner-readable, and reuses them", () => {
    const dir = mkdtempSync(join(tmpdir(), "vericode-config-"));
    const first = load({ DATABASE_URL: `sqlite:${join(dir, "v.db")}` });
    const second = load({ DATABASE_URL: `sqlite:${join(dir, "v.db")}` });
    expect(first.jwt.secret).toHaveLength(64);
    expect(second.jwt.secret).toBe(first.jwt.secret);
    expect(second.otp.keys).toEqual(first.otp.keys);
    expect(first.otp.keys).toEqual([{ id: "default", secret: expect.stringMatching(/^[0-9a-f]{64}$/) }]);
    expect(first.otp.keys[0]?.secret).not.toBe(first.jwt.secret);
    expect(first.warnings[0]).toContain("development secrets");
    expect(statSync(join(dir, "dev-secrets.json")).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(dir, "dev-secrets.json"), "utf8")).jwtSecret).toBe(first.jwt.secret);
  });

  it("chooses Twilio when TWILIO_ACCOUNT_SID is set and checks its settings", () => {
    const sid = `AC${"a".repeat(32)}`;
    const config = load({ ...SECRETS, TWILIO_ACCOUNT_SID: sid, TWILIO_AUTH_TOKEN: "t", TWILIO_PHONE_NUMBER: "+15005550006" });
    expect(config.smsProvider).toBe("twilio");
    expect(config.twilio).toMatchObject({ accountSid: sid, username: sid, password: "t", phoneNumber: "+15005550006", apiBaseUrl: null });
    const withKey = load({
      ...SECRETS,
      TWILIO_ACCOUNT_SID: sid,
      TWILIO_API_KEY: `SK${"b".repeat(32)}`,
      TWILIO_API_SECRET: "s",
      TWILIO_MESSAGING_SERVICE_SID: `MG${"c".repeat(32)}`,
    });
    expect(withKey.twilio).toMatchObject({ username: `SK${"b".repeat(32)}`, password: "s", messagingServiceSid: `MG${"c".repeat(32)}` });
    expect(problemsOf({ ...SECRETS, TWILIO_ACCOUNT_SID: "nope" }).join("\n")).toMatch(
      /TWILIO_ACCOUNT_SID must be AC.*\n.*TWILIO_AUTH_TOKEN is required.*\n.*needs a sender/,
    );
  });

  it("reads OTP_TEST_NUMBERS and refuses a malformed entry", () => {
    expect(load({ ...SECRETS, OTP_TEST_NUMBERS: "+15005550006=123456, +50688887777=000000" }).otp.testNumbers).toEqual(
      new Map([
        ["+15005550006", "123456"],
        ["+50688887777", "000000"],
      ]),
    );
    expect(problemsOf({ ...SECRETS, OTP_TEST_NUMBERS: "+15005550006=12" })[0]).toContain("6-digit code");
  });

  it("reads a .env file under the environment", () => {
    const dir = mkdtempSync(join(tmpdir(), "vericode-env-"));
    writeFileSync(join(dir, ".env"), `PORT=4000\nOTP_TTL_SECONDS=300\nJWT_SECRET=${"j".repeat(32)}\nOTP_SECRET=${"o".repeat(32)}\n`);
    const config = loadConfig({ env: { PORT: "5000" }, envFile: join(dir, ".env") });
    expect(config.port).toBe(5000);
    expect(config.otp.ttlSeconds).toBe(300);
  });

  it("reads the operations and flow switches, and names their bad values", () => {
    const defaults = load(SECRETS);
    expect(defaults).toMatchObject({ retentionDays: 30, metricsToken: null, webDemo: true, requirePhoneVerification: false });
    expect(
      load({
        ...SECRETS,
        NODE_ENV: "production",
        SMS_PROVIDER: "twilio",
        TWILIO_ACCOUNT_SID: `AC${"0".repeat(32)}`,
        TWILIO_AUTH_TOKEN: "t",
        TWILIO_PHONE_NUMBER: "+15005550006",
      }).webDemo,
    ).toBe(false);
    expect(
      load({ ...SECRETS, RETENTION_DAYS: "7", METRICS_TOKEN: "m".repeat(24), WEB_DEMO: "false", REQUIRE_PHONE_VERIFICATION: "true" }),
    ).toMatchObject({
      retentionDays: 7,
      metricsToken: "m".repeat(24),
      webDemo: false,
      requirePhoneVerification: true,
    });
    const text = problemsOf({
      ...SECRETS,
      RETENTION_DAYS: "0",
      METRICS_TOKEN: "short",
      WEB_DEMO: "yes",
      REQUIRE_PHONE_VERIFICATION: "1",
    }).join("\n");
    expect(text).toContain('RETENTION_DAYS="0" is not allowed: expected a whole number from 1 to 3650.');
    expect(text).toContain("METRICS_TOKEN is too short");
    expect(text).toContain('WEB_DEMO="yes" is not allowed: use true or false.');
    expect(text).toContain('REQUIRE_PHONE_VERIFICATION="1" is not allowed: use true or false.');
  });

  it("names a bad value of every other checked variable in its own words", () => {
    const cases: [Record<string, string>, string][] = [
      [{ HOST: "::" }, 'PUBLIC_BASE_URL="http://:::3000" is not an http(s) URL.'],
      [{ PUBLIC_BASE_URL: "otp.example.com/" }, 'PUBLIC_BASE_URL="otp.example.com" is not an http(s) URL.'],
      [{ DATABASE_URL: "sqlite:" }, 'DATABASE_URL="sqlite:" needs a file path, for example sqlite:data/vericode.db.'],
      [{ REDIS_URL: "localhost:6379" }, 'REDIS_URL="localhost:6379" must start with redis:// or rediss://.'],
      [{ JWT_JWKS_URL: "ftp://x" }, 'JWT_JWKS_URL="ftp://x" is not an http(s) URL.'],
      [
        { JWT_PUBLIC_KEY: "/nonexistent.pem" },
        "JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----…) or the path of a file holding one.",
      ],
      [{ SMS_PROVIDER: "sns" }, 'SMS_PROVIDER="sns" is not a provider: use twilio or console.'],
      [
        { SMS_PROVIDER: "twilio" },
        "SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET).",
      ],
      [{ TEST_PHONE_NUMBER: "12" }, 'TEST_PHONE_NUMBER="12" is not a valid phone number in E.164 form (+50688887777).'],
      [{ CONVERSION_BREAKER_MIN_SENDS: "some" }, 'CONVERSION_BREAKER_MIN_SENDS="some" is not a whole number (0 turns the breaker off).'],
      [{ CONVERSION_BREAKER_MIN_RATE: "150" }, 'CONVERSION_BREAKER_MIN_RATE="150" is not a percentage from 0 to 100.'],
      [{ SMS_PRICES_FILE: "/nonexistent.json" }, 'SMS_PRICES_FILE="/nonexistent.json" cannot be read as a JSON object of prices'],
      [{ TEMPLATES_DIR: "/nonexistent" }, 'TEMPLATES_DIR="/nonexistent" does not exist.'],
      [{ SMTP_URL: "smtp://h", EMAIL_FROM: "nobody" }, 'EMAIL_FROM="nobody" is not an address or Name <address>.'],
    ];
    for (const [env, message] of cases) expect(problemsOf({ ...SECRETS, ...env }).join("\n"), JSON.stringify(env)).toContain(message);
    const sid = `AC${"a".repeat(32)}`;
    expect(
      problemsOf({
        ...SECRETS,
        TWILIO_ACCOUNT_SID: sid,
        TWILIO_API_KEY: "SK1",
        TWILIO_PHONE_NUMBER: "15",
        TWILIO_WHATSAPP_FROM: "+14155238886",
        TWILIO_WHATSAPP_CONTENT_SID: "HX1",
        TWILIO_API_BASE_URL: "localhost",
      }),
    ).toEqual([
      "TWILIO_API_KEY (SK + 32 hexadecimal characters) and TWILIO_API_SECRET must be set together.",
      'TWILIO_PHONE_NUMBER="15" is not a phone number in E.164 form (+15005550006).',
      'TWILIO_WHATSAPP_FROM="+14155238886" must be whatsapp: followed by an E.164 number (whatsapp:+14155238886).',
      "TWILIO_WHATSAPP_CONTENT_SID must be HX followed by 32 hexadecimal characters (a Content Template SID).",
      'TWILIO_API_BASE_URL="localhost" is not an http(s) URL.',
    ]);
  });

  it("derives the defaults that depend on other variables", () => {
    expect(load({ ...SECRETS, HOST: "0.0.0.0", PORT: "8080" }).publicBaseUrl).toBe("http://0.0.0.0:8080");
    expect(load({ ...SECRETS, PUBLIC_BASE_URL: "https://otp.example.com//" }).publicBaseUrl).toBe("https://otp.example.com");
    expect(load({ ...SECRETS, OTP_RESEND_COOLDOWN_SECONDS: "600" }).otp.resendCooldownMaxSeconds).toBe(600);
    expect(load({ ...SECRETS, CONVERSION_BREAKER_MIN_SENDS: "0" }).protection.breaker).toBeNull();
    expect(load({ ...SECRETS, BLOCKED_NUMBER_TYPES: "none" }).protection.blockedNumberTypes.size).toBe(0);
    expect(load({ ...SECRETS, DEFAULT_COUNTRY: "cr", TEST_PHONE_NUMBER: "8888 7777" })).toMatchObject({
      defaultCountry: "CR",
      testPhoneNumber: "+50688887777",
    });
  });
});
