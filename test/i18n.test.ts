import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { ConfigError } from "../src/errors.js";
import { fitsOneSegment, SEGMENT, smsEncoding } from "../src/i18n/gsm.js";
import { Messages, parseAcceptLanguage } from "../src/i18n/messages.js";
import { SMS_TEMPLATES } from "../src/i18n/templates.js";
import { PURPOSES } from "../src/otp/types.js";
import { sqliteDatabase, type TestDatabase } from "./support/databases.js";
import { RecordingChannel, startService, TEST_SECRETS, type TestService } from "./support/service.js";

describe("SMS templates", () => {
  const locales = Object.keys(SMS_TEMPLATES);

  it("cover at least twelve languages, every purpose in each", () => {
    expect(locales.length).toBeGreaterThanOrEqual(12);
    expect(locales).toEqual(expect.arrayContaining(["es", "en", "pt", "fr", "de", "it"]));
    for (const locale of locales) expect(Object.keys(SMS_TEMPLATES[locale] ?? {}).sort()).toEqual([...PURPOSES].sort());
  });

  it.each(locales)("%s: each text starts with the code, states the lifetime and fits one SMS segment with a 10-digit code", (locale) => {
    const messages = new Messages();
    for (const purpose of PURPOSES) {
      const template = SMS_TEMPLATES[locale]?.[purpose] ?? "";
      expect(template.startsWith("{code}")).toBe(true);
      expect(template).toContain("{minutes}");
      const text = messages.sms(locale, purpose, "1234567890", 600);
      const { encoding, length } = smsEncoding(text);
      expect(length, `${locale} ${purpose} (${encoding}): ${text}`).toBeLessThanOrEqual(SEGMENT[encoding]);
    }
  });

  it("counts GSM-7 the way a handset does: extension characters twice, anything else makes it UCS-2", () => {
    expect(smsEncoding("Code: 123456 €")).toEqual({ encoding: "GSM-7", length: 15 });
    expect(smsEncoding("código")).toEqual({ encoding: "UCS-2", length: 6 });
    expect(smsEncoding("Ñandú")).toMatchObject({ encoding: "UCS-2" });
    expect(fitsOneSegment("a".repeat(160))).toBe(true);
    expect(fitsOneSegment("a".repeat(161))).toBe(false);
    expect(fitsOneSegment("ó".repeat(71))).toBe(false);
  });
});

describe("email texts", () => {
  const messages = new Messages();
  /** "number" in every language of the templates, as their registration SMS says it. */
  const NUMBER = /number|número|numéro|Nummer|numero|nummer|numeru|номер|手机号|電話番号/i;

  it.each(Object.keys(SMS_TEMPLATES))(
    "%s: the email confirms an address, never a number, and says email where the SMS says SMS",
    (locale) => {
      for (const purpose of PURPOSES) {
        const text = messages.email(locale, purpose, "123456", 600);
        expect(text.startsWith("123456"), `${locale} ${purpose}: ${text}`).toBe(true);
        expect(text, `${locale} ${purpose}`).toContain("10");
        expect(text, `${locale} ${purpose}`).not.toMatch(NUMBER);
        expect(text, `${locale} ${purpose}`).not.toMatch(/SMS|短信/);
      }
      // The SMS itself still confirms the number.
      expect(messages.sms(locale, "registration", "123456", 600)).toMatch(NUMBER);
    },
  );

  it("speaks of the address in the registration email, and reads as the SMS for the other purposes", () => {
    expect(messages.email("en", "registration", "123456", 600)).toBe(
      "123456 is your code to confirm your email address. It expires in 10 min. Never share it.",
    );
    expect(messages.email("es-CR", "registration", "123456", 600)).toBe(
      "123456 es tu código para confirmar tu correo electrónico. Vence en 10 min.",
    );
    expect(messages.email("de", "login", "123456", 600)).toBe(messages.text("de", "login", "123456", 600));
  });
});

describe("choosing the language", () => {
  const messages = new Messages({ defaultLocale: "pt" });

  it("takes the request's locale, then Accept-Language, then the number's country, then DEFAULT_LOCALE", () => {
    expect(messages.resolve({ requested: "es-CR", acceptLanguage: "de", country: "FR" })).toBe("es");
    expect(messages.resolve({ requested: "xx", acceptLanguage: "fr-CH, de;q=0.9", country: "IT" })).toBe("fr");
    expect(messages.resolve({ acceptLanguage: "xx, de;q=0.5, it;q=0.7" })).toBe("it");
    expect(messages.resolve({ acceptLanguage: "*", country: "CR" })).toBe("es");
    expect(messages.resolve({ country: "JP" })).toBe("ja");
    expect(messages.resolve({ country: "US" })).toBe("pt");
    expect(new Messages({ defaultLocale: "xx" }).resolve({})).toBe("en");
  });

  it("reads Accept-Language by q-value, in order for ties", () => {
    expect(parseAcceptLanguage("da, en-GB;q=0.8, en;q=0.7, *;q=0.1")).toEqual(["da", "en-GB", "en"]);
    expect(parseAcceptLanguage("de;q=0, fr")).toEqual(["fr"]);
    expect(parseAcceptLanguage(null)).toEqual([]);
  });

  it("adds the WebOTP line for browser autofill when WEBOTP_DOMAIN is set", () => {
    const text = new Messages({ webOtpDomain: "example.com" }).sms("en", "login", "123456", 600);
    expect(text.split("\n").at(-1)).toBe("@example.com #123456");
  });

  it("takes templates from TEMPLATES_DIR over the built-in ones, locale by locale", () => {
    const dir = mkdtempSync(join(tmpdir(), "vericode-templates-"));
    writeFileSync(join(dir, "es-CR.json"), JSON.stringify({ sms: { login: "{code} es su código de Parque Marino ({minutes} min)." } }));
    const config = loadConfig({ env: { ...TEST_SECRETS, TEMPLATES_DIR: dir }, envFile: false });
    const custom = new Messages({ overrides: config.messages.overrides });
    expect(custom.sms(custom.resolve({ requested: "es-CR" }), "login", "123456", 600)).toBe(
      "123456 es su código de Parque Marino (10 min).",
    );
    // The other purposes of es-CR, and plain es, keep the built-in texts.
    expect(custom.sms("es-CR", "registration", "123456", 600)).toBe(new Messages().sms("es", "registration", "123456", 600));
    writeFileSync(join(dir, "fr.json"), JSON.stringify({ sms: { login: "pas de code ici" } }));
    expect(() => loadConfig({ env: { ...TEST_SECRETS, TEMPLATES_DIR: dir }, envFile: false })).toThrow(ConfigError);
  });
});

describe("send-otp speaks the user's language", () => {
  let db: TestDatabase;
  let service: TestService;
  const channel = new RecordingChannel();
  let n = 0;

  beforeAll(async () => {
    db = sqliteDatabase();
    service = await startService(db, { channel });
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  async function textFor(phone: string, payload: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<string> {
    const response = await service.app.inject({
      method: "POST",
      url: "/api/v1/messaging/send-otp/",
      headers: { authorization: `Bearer ${service.tokenFor(`usr_i18n_${++n}`)}`, ...headers },
      payload: { phone_number: phone, purpose: "login", ...payload },
    });
    expect(response.statusCode).toBe(200);
    return channel.sent.at(-1)?.body ?? "";
  }

  it("from the request's locale, Accept-Language or the number's country", async () => {
    expect(await textFor("+14155550123", { locale: "es-CR" })).toMatch(/^\d{6} es tu código de acceso\./);
    expect(await textFor("+14155550124", {}, { "accept-language": "de-AT, en;q=0.5" })).toMatch(/^\d{6} ist Ihr Anmeldecode\./);
    expect(await textFor("+50683330003")).toMatch(/^\d{6} es tu código de acceso\./);
    expect(await textFor("+14155550125")).toMatch(/^\d{6} is your sign-in code\./);
  });
});
