import { describe, expect, it } from "vitest";
import { SEGMENT, smsEncoding } from "../../src/i18n/gsm.js";
import { SMS_TEMPLATES } from "../../src/i18n/templates.js";
import { VERIFY_LOCALES, type VerifyText, verifyLocale, verifyMessage, verifySpoken } from "../../src/verify/templates.js";

/** Twilio caps a Verify service's FriendlyName at 30 characters and a CustomCode at 10: the longest text. */
const NAME_30 = "Parque Nacional Manuel Antonio";
const CODE_10 = "1234567890";
/** The hash of Twilio's AppHash example. */
const APP_HASH = "He42w354ol9";

function text(overrides: Partial<VerifyText> = {}): VerifyText {
  return { locale: "en", friendlyName: "Acme", code: "123456", doNotShare: false, appHash: null, ...overrides };
}

function segmentOverflow(body: string): string | null {
  const { encoding, length } = smsEncoding(body);
  return length <= SEGMENT[encoding] ? null : `${encoding} ${length} > ${SEGMENT[encoding]}: ${body}`;
}

describe("Verify message texts", () => {
  it("exist in the twelve languages vericode's own SMS texts do", () => {
    expect(NAME_30).toHaveLength(30);
    expect([...VERIFY_LOCALES].sort()).toEqual(Object.keys(SMS_TEMPLATES).sort());
    expect(VERIFY_LOCALES).toHaveLength(12);
  });

  it("word English exactly as Twilio Verify's default template, and its DoNotShareWarningEnabled sentence", () => {
    expect(verifyMessage(text())).toBe("Your Acme verification code is: 123456.");
    expect(verifyMessage(text({ doNotShare: true }))).toBe(
      "Your Acme verification code is: 123456. Don't share this code with anyone; our employees will never ask for the code.",
    );
  });

  it.each(VERIFY_LOCALES)("%s: names the service and carries the code, and the warning comes after the message", (locale) => {
    const plain = verifyMessage(text({ locale, friendlyName: NAME_30, code: CODE_10 }));
    expect(plain).toContain(NAME_30);
    expect(plain).toContain(CODE_10);
    const warned = verifyMessage(text({ locale, friendlyName: NAME_30, code: CODE_10, doNotShare: true }));
    expect(warned.startsWith(plain)).toBe(true);
    expect(warned.length - plain.length).toBeGreaterThan(15);
  });

  it("follows Twilio's AppHash example to the character: `<#> ` first, the hash last in place of the closing full stop", () => {
    expect(verifyMessage(text({ friendlyName: "AppName", code: "1234", appHash: APP_HASH }))).toBe(
      "<#> Your AppName verification code is: 1234 He42w354ol9",
    );
    // With the warning the hash still comes last, after the warning's own full stop.
    expect(verifyMessage(text({ friendlyName: "AppName", code: "1234", appHash: APP_HASH, doNotShare: true }))).toBe(
      "<#> Your AppName verification code is: 1234. Don't share this code with anyone; our employees will never ask for the code. He42w354ol9",
    );
    for (const locale of VERIFY_LOCALES) {
      const body = verifyMessage(text({ locale, appHash: APP_HASH }));
      expect(body, locale).toMatch(/^<#> .*123456.* He42w354ol9$/);
      expect(body, locale).toBe(`<#> ${verifyMessage(text({ locale })).replace(/(123456)[.。]$/, "$1")} ${APP_HASH}`);
    }
  });

  it("takes the language of a region tag, and English for a language it does not have", () => {
    expect(verifyMessage(text({ locale: "es-MX" }))).toBe(verifyMessage(text({ locale: "es" })));
    expect(verifyMessage(text({ locale: "PT_br" }))).toBe(verifyMessage(text({ locale: "pt" })));
    expect(verifyMessage(text({ locale: "ko" }))).toBe(verifyMessage(text({ locale: "en" })));
    expect(verifyMessage(text({ locale: "" }))).toBe(verifyMessage(text({ locale: "en" })));
  });

  it("fills a friendly name that looks like a placeholder in as text", () => {
    expect(verifyMessage(text({ friendlyName: "{code}" }))).toBe("Your {code} verification code is: 123456.");
    expect(verifySpoken(text({ friendlyName: "{digits}", code: "12" }))).toBe(
      "Your {digits} verification code is: 1, 2. Once again, your code is: 1, 2.",
    );
  });

  it("throws a TypeError for an empty code", () => {
    expect(() => verifyMessage(text({ code: "" }))).toThrow(TypeError);
    expect(() => verifySpoken(text({ code: "" }))).toThrow(TypeError);
  });
});

describe("SMS segments, with a 30-character friendly name and a 10-digit code", () => {
  /** The languages whose texts need no character outside the GSM 7-bit alphabet. */
  const GSM_7 = ["en", "fr", "de", "it", "nl", "pl", "sv"];

  it.each(VERIFY_LOCALES)("%s: the message fits one segment in the encoding its script allows", (locale) => {
    const body = verifyMessage(text({ locale, friendlyName: NAME_30, code: CODE_10 }));
    expect(smsEncoding(body).encoding).toBe(GSM_7.includes(locale) ? "GSM-7" : "UCS-2");
    expect(segmentOverflow(body)).toBeNull();
  });

  it("with the warning: one segment in every GSM-7 language and Chinese; two in Spanish, Portuguese, Russian and Japanese", () => {
    // UCS-2 leaves 30 characters beside the name and the code; the warning alone takes 60 to 80 in these four,
    // and shortening it further would drop "our employees will never ask for the code". Twilio's own texts go
    // as two segments here too.
    const twoSegments = ["es", "pt", "ru", "ja"];
    for (const locale of VERIFY_LOCALES) {
      const body = verifyMessage(text({ locale, friendlyName: NAME_30, code: CODE_10, doNotShare: true }));
      if (twoSegments.includes(locale)) expect(segmentOverflow(body), locale).not.toBeNull();
      else expect(segmentOverflow(body), locale).toBeNull();
    }
  });

  it("with an AppHash: within the 140 bytes Google's SMS Retriever reads, except Spanish, Portuguese and Russian at the longest", () => {
    // `<#> ` and ` He42w354ol9` take 16 of UCS-2's 70 characters. At Twilio's limits these three come to 74, 73
    // and 80; with a 6-digit code and a 30-character name Spanish and Portuguese fit (70, 69), Russian with a
    // name of up to 24 characters.
    const over = ["es", "pt", "ru"];
    for (const locale of VERIFY_LOCALES) {
      const body = verifyMessage(text({ locale, friendlyName: NAME_30, code: CODE_10, appHash: APP_HASH }));
      if (over.includes(locale)) expect(segmentOverflow(body), locale).not.toBeNull();
      else expect(segmentOverflow(body), locale).toBeNull();
    }
    for (const locale of ["es", "pt"]) {
      expect(segmentOverflow(verifyMessage(text({ locale, friendlyName: NAME_30, appHash: APP_HASH }))), locale).toBeNull();
    }
    expect(segmentOverflow(verifyMessage(text({ locale: "ru", friendlyName: NAME_30.slice(0, 24), appHash: APP_HASH })))).toBeNull();
  });
});

describe("verifySpoken", () => {
  it("reads the code digit by digit, twice", () => {
    expect(verifySpoken(text())).toBe("Your Acme verification code is: 1, 2, 3, 4, 5, 6. Once again, your code is: 1, 2, 3, 4, 5, 6.");
  });

  it.each(VERIFY_LOCALES)("%s: names the service and says each digit apart, twice", (locale) => {
    const spoken = verifySpoken({ locale, friendlyName: "Acme", code: "908172" });
    expect(spoken).toContain("Acme");
    expect(spoken).not.toContain("908172");
    const spelled = spoken.match(/9\D{1,2}0\D{1,2}8\D{1,2}1\D{1,2}7\D{1,2}2/g) ?? [];
    expect(spelled).toHaveLength(2);
  });
});

describe("verifyLocale", () => {
  it.each([
    ["en", "en"],
    ["EN", "en"],
    ["en-GB", "en"],
    ["pt-BR", "pt"],
    ["pt_br", "pt"],
    ["es-419", "es"],
    ["zh-CN", "zh"],
    ["zh-HK", "zh"],
    ["zh-Hant-TW", "zh"],
    [" ja-JP ", "ja"],
  ])("%s → %s", (tag, locale) => {
    expect(verifyLocale(tag)).toBe(locale);
  });

  it.each(["ko", "nb", "af", "", "english", "en-", "-en", "e"])("%s → null", (tag) => {
    expect(verifyLocale(tag)).toBeNull();
  });
});
