import { createInterface } from "node:readline/promises";
import pino from "pino";
import twilio from "twilio";
import { afterAll, describe, expect, it } from "vitest";
import { createVericode, type Vericode } from "../../src/vericode.js";

/**
 * The real Twilio API, through vericode as it runs in production (`SMS_PROVIDER=twilio`).
 *
 * - With the account's **test credentials** (TWILIO_TEST_ACCOUNT_SID, TWILIO_TEST_AUTH_TOKEN; free,
 *   nothing is delivered) it sends from Twilio's magic sender +15005550006 to the magic recipients and
 *   checks each outcome maps to the contract's error.
 * - With **live credentials** (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN or an API key, TWILIO_PHONE_NUMBER
 *   or TWILIO_MESSAGING_SERVICE_SID) and TEST_PHONE_NUMBER it sends one real code there (this costs one
 *   SMS), follows the message on Twilio until it is delivered or failed, and, at a terminal, asks for the
 *   code and verifies it.
 *
 * Each part skips, saying what it needs, when its credentials are not set. It never runs under CI.
 */

const env = process.env;
const inCi = Boolean(env.CI);
const testCredentials = env.TWILIO_TEST_ACCOUNT_SID !== undefined && env.TWILIO_TEST_AUTH_TOKEN !== undefined;
const liveCredentials =
  env.TWILIO_ACCOUNT_SID !== undefined &&
  (env.TWILIO_AUTH_TOKEN !== undefined || (env.TWILIO_API_KEY !== undefined && env.TWILIO_API_SECRET !== undefined)) &&
  (env.TWILIO_PHONE_NUMBER !== undefined || env.TWILIO_MESSAGING_SERVICE_SID !== undefined) &&
  env.TEST_PHONE_NUMBER !== undefined;

if (inCi) console.warn("test:twilio-live never runs under CI (CI is set): every live test is skipped.");
if (!testCredentials) {
  console.warn(
    "Twilio test credentials not set: set TWILIO_TEST_ACCOUNT_SID and TWILIO_TEST_AUTH_TOKEN (Console → Account → API keys & tokens → Test credentials).",
  );
}
if (!liveCredentials) {
  console.warn(
    "Live send skipped: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (or TWILIO_API_KEY + TWILIO_API_SECRET), TWILIO_PHONE_NUMBER (or TWILIO_MESSAGING_SERVICE_SID) and TEST_PHONE_NUMBER.",
  );
}

const SECRETS = { JWT_SECRET: "live-test-jwt-secret-0123456789abcdef0123", OTP_SECRET: "live-test-otp-secret-0123456789abcdef0123" };
const opened: Vericode[] = [];

async function vericodeWith(variables: Record<string, string>): Promise<Vericode> {
  const vericode = await createVericode({
    env: {
      ...SECRETS,
      DATABASE_URL: "sqlite::memory:",
      SMS_PROVIDER: "twilio",
      LOG_LEVEL: "silent",
      PUBLIC_BASE_URL: env.PUBLIC_BASE_URL ?? "https://example.com",
      // Protection stays on, as in production, but a test run must not trip it.
      RATE_LIMIT_GLOBAL: "off",
      CONVERSION_BREAKER_MIN_SENDS: "0",
      ...variables,
    },
    envFile: false,
    logger: pino({ level: "silent" }),
  });
  opened.push(vericode);
  return vericode;
}

afterAll(async () => {
  for (const vericode of opened) await vericode.close();
});

describe.skipIf(inCi || !testCredentials)("Twilio test credentials and magic numbers", () => {
  const credentials = () => ({
    TWILIO_ACCOUNT_SID: env.TWILIO_TEST_ACCOUNT_SID as string,
    TWILIO_AUTH_TOKEN: env.TWILIO_TEST_AUTH_TOKEN as string,
    TWILIO_PHONE_NUMBER: "+15005550006",
    // A dry run of this script against a Twilio-compatible server of one's own; unset, Twilio itself.
    ...(env.TWILIO_API_BASE_URL === undefined ? {} : { TWILIO_API_BASE_URL: env.TWILIO_API_BASE_URL }),
  });

  it("accepts a valid recipient: the record carries Twilio's message SID", async () => {
    const vericode = await vericodeWith(credentials());
    const sent = await vericode.otp.sendOtp("+14155552671", "live-test", "login");
    expect(sent).toMatchObject({ ok: true });
    if (!sent.ok) return;
    const record = await vericode.store.findCode(sent.id);
    expect(record?.providerMessageId).toMatch(/^SM[0-9a-f]{32}$/);
  });

  it.each([
    ["+15005550001", "invalid_phone_number", undefined],
    ["+15005550002", "provider_rejected", "21612"],
    ["+15005550003", "provider_rejected", "21408"],
    ["+15005550004", "provider_rejected", "21610"],
    ["+15005550009", "provider_rejected", "21614"],
  ])("maps Twilio's answer for %s to %s", async (to, code, providerCode) => {
    const vericode = await vericodeWith({ ...credentials(), SAFE_NUMBERS: to });
    const sent = await vericode.otp.sendOtp(to, "live-test", "login");
    expect(sent).toMatchObject({ ok: false, code, ...(providerCode === undefined ? {} : { providerCode }) });
  });

  it("refuses to send from a number that is not a valid sender (21212), leaving nothing sent", async () => {
    const vericode = await vericodeWith({ ...credentials(), TWILIO_PHONE_NUMBER: "+15005550001" });
    const sent = await vericode.otp.sendOtp("+14155552671", "live-test", "login");
    expect(sent).toMatchObject({ ok: false });
  });
});

describe.skipIf(inCi || !liveCredentials)("a live code to TEST_PHONE_NUMBER", () => {
  it("sends it, follows it on Twilio to a final status, and verifies the code typed at the prompt", async () => {
    const phone = env.TEST_PHONE_NUMBER as string;
    const pick = (...names: string[]) => Object.fromEntries(names.filter((n) => env[n] !== undefined).map((n) => [n, env[n] as string]));
    const vericode = await vericodeWith(
      pick(
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_API_KEY",
        "TWILIO_API_SECRET",
        "TWILIO_PHONE_NUMBER",
        "TWILIO_MESSAGING_SERVICE_SID",
        "DEFAULT_LOCALE",
      ),
    );
    const sent = await vericode.otp.sendOtp(phone, "live-test", "registration");
    expect(sent, JSON.stringify(sent)).toMatchObject({ ok: true });
    if (!sent.ok) return;
    const record = await vericode.store.findCode(sent.id);
    const sid = record?.providerMessageId as string;
    expect(sid).toMatch(/^(SM|MM)[0-9a-f]{32}$/);

    // Twilio's own view of the message, until it is final (its status callback cannot reach this machine).
    const client = env.TWILIO_AUTH_TOKEN
      ? twilio(env.TWILIO_ACCOUNT_SID, env.TWILIO_AUTH_TOKEN)
      : twilio(env.TWILIO_API_KEY, env.TWILIO_API_SECRET, { accountSid: env.TWILIO_ACCOUNT_SID as string });
    let status = "queued";
    for (let i = 0; i < 30 && !["delivered", "undelivered", "failed"].includes(status); i++) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const message = await client.messages(sid).fetch();
      status = message.status;
      if (message.errorCode !== null) console.warn(`Twilio error ${message.errorCode} for ${sid}`);
    }
    console.info(`message ${sid} to ${phone}: ${status}`);
    expect(["delivered", "sent"]).toContain(status);

    if (process.stdin.isTTY) {
      const prompt = createInterface({ input: process.stdin, output: process.stdout });
      const code = (await prompt.question(`Code received on ${phone}: `)).trim();
      prompt.close();
      const verified = await vericode.otp.verifyOtp(phone, code, "live-test", "registration");
      expect(verified, JSON.stringify(verified)).toMatchObject({ ok: true });
    } else console.info("stdin is not a terminal: the code's verification is left out (run it from a terminal to type the code).");
  });
});
