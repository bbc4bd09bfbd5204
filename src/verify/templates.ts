/**
 * The texts of the /v2 API, which speaks Twilio Verify's wire format and so words its codes the way Twilio
 * Verify does: English is Twilio's default SMS template word for word, "Your {friendly_name} verification
 * code is: {code}." (https://twilio.com/docs/verify/verification-templates), and the other languages say the
 * same thing the way a native speaker would write it.
 */

/** `{friendly_name}` and `{code}` are filled in; `{digits}` is the code spelled out for a voice call. */
interface VerifyTemplates {
  /** The SMS, WhatsApp and email text. */
  message: string;
  /**
   * The service's DoNotShareWarningEnabled sentence, with the space that joins it to the message where the
   * language puts one between sentences (Chinese and Japanese do not).
   */
  doNotShare: string;
  /** What a voice call reads: the code twice. */
  spoken: string;
  /** What separates the code's characters in `{digits}`, so that a text-to-speech voice pauses on each. */
  pause: string;
}

/**
 * One entry per language, in the order and style of src/i18n/templates.ts. With a 30-character friendly
 * name (Twilio's maximum) and a 10-digit code, every `message` fits one SMS segment: GSM-7 (160 characters)
 * where the language allows it, UCS-2 (70) where its script needs it, which is why Spanish and Portuguese
 * say "your {friendly_name} code" rather than "verification code" (test/verify/templates.test.ts checks
 * every one, and says which also fit with the warning or an AppHash).
 */
const VERIFY_TEMPLATES: Readonly<Record<string, VerifyTemplates>> = {
  en: {
    message: "Your {friendly_name} verification code is: {code}.",
    doNotShare: " Don't share this code with anyone; our employees will never ask for the code.",
    spoken: "Your {friendly_name} verification code is: {digits}. Once again, your code is: {digits}.",
    pause: ", ",
  },
  es: {
    message: "Tu código de {friendly_name} es: {code}.",
    doNotShare: " No lo compartas con nadie; nuestros empleados nunca te lo pedirán.",
    spoken: "Tu código de verificación de {friendly_name} es: {digits}. Repito, tu código es: {digits}.",
    pause: ", ",
  },
  pt: {
    message: "O seu código {friendly_name} é: {code}.",
    doNotShare: " Não o partilhe com ninguém; os nossos funcionários nunca lhe pedirão este código.",
    spoken: "O seu código de verificação {friendly_name} é: {digits}. Repito, o seu código é: {digits}.",
    pause: ", ",
  },
  fr: {
    message: "Votre code de vérification {friendly_name} est : {code}.",
    doNotShare: " Ne le communiquez à personne ; nos employés ne vous le demanderont jamais.",
    spoken: "Votre code de vérification {friendly_name} est : {digits}. Je répète, votre code est : {digits}.",
    pause: ", ",
  },
  de: {
    message: "Ihr Bestätigungscode für {friendly_name} lautet: {code}.",
    doNotShare: " Geben Sie ihn an niemanden weiter; unsere Mitarbeiter fragen Sie nie danach.",
    spoken: "Ihr Bestätigungscode für {friendly_name} lautet: {digits}. Noch einmal, Ihr Code lautet: {digits}.",
    pause: ", ",
  },
  it: {
    message: "Il tuo codice di verifica per {friendly_name} è: {code}.",
    doNotShare: " Non condividerlo con nessuno; i nostri dipendenti non te lo chiederanno mai.",
    spoken: "Il tuo codice di verifica per {friendly_name} è: {digits}. Ripeto, il tuo codice è: {digits}.",
    pause: ", ",
  },
  nl: {
    message: "Je verificatiecode voor {friendly_name} is: {code}.",
    doNotShare: " Deel deze code met niemand; onze medewerkers zullen er nooit om vragen.",
    spoken: "Je verificatiecode voor {friendly_name} is: {digits}. Nogmaals, je code is: {digits}.",
    pause: ", ",
  },
  pl: {
    // "Kod weryfikacyjny", not "Twój kod": without ó the text stays GSM-7 and has room for the warning.
    message: "Kod weryfikacyjny {friendly_name}: {code}.",
    doNotShare: " Nie podawaj go nikomu; nasz personel nigdy nie poprosi o ten kod.",
    spoken: "Twój kod weryfikacyjny {friendly_name} to: {digits}. Powtarzam, Twój kod to: {digits}.",
    pause: ", ",
  },
  sv: {
    message: "Din verifieringskod för {friendly_name} är: {code}.",
    doNotShare: " Dela inte koden med någon; våra anställda ber aldrig om den.",
    spoken: "Din verifieringskod för {friendly_name} är: {digits}. Jag upprepar, din kod är: {digits}.",
    pause: ", ",
  },
  ru: {
    message: "Ваш код подтверждения {friendly_name}: {code}.",
    doNotShare: " Никому не сообщайте этот код: наши сотрудники никогда его не запрашивают.",
    spoken: "Ваш код подтверждения {friendly_name}: {digits}. Повторяю, ваш код: {digits}.",
    pause: ", ",
  },
  zh: {
    message: "您的 {friendly_name} 验证码是：{code}。",
    doNotShare: "请勿告知他人，工作人员不会向您索取。",
    spoken: "您的 {friendly_name} 验证码是：{digits}。再说一遍，您的验证码是：{digits}。",
    pause: "，",
  },
  ja: {
    message: "{friendly_name} の認証コードは {code} です。",
    doNotShare: "このコードは誰にも教えないでください。当社の従業員がコードをお尋ねすることはありません。",
    spoken: "{friendly_name} の認証コードは {digits} です。もう一度繰り返します。認証コードは {digits} です。",
    pause: "、",
  },
};

/** The languages the /v2 API's messages exist in (Twilio's `Locale`), lower case. */
export const VERIFY_LOCALES: readonly string[] = Object.freeze(Object.keys(VERIFY_TEMPLATES));

export interface VerifyText {
  /** One of VERIFY_LOCALES; a region tag reads its language, anything else English. */
  locale: string;
  /** The service's FriendlyName, or the verification's CustomFriendlyName (Twilio allows 30 characters). */
  friendlyName: string;
  /** The code as the user types it (Twilio's codes are 4 to 10 characters). */
  code: string;
  /** The service's DoNotShareWarningEnabled. */
  doNotShare: boolean;
  /** The verification's AppHash (SMS only, 11 characters for Android's SMS Retriever), or null. */
  appHash: string | null;
}

/**
 * The SMS/WhatsApp/email text of a Verify code. locale must be one of VERIFY_LOCALES (caller resolves;
 * `es-mx`→`es` is the caller's job but accept region tags by falling back to the language, and unknown → en).
 *
 * With an AppHash the text follows Twilio's documented example for Android's SMS Retriever, "Example SMS
 * body: `<#> Your AppName verification code is: 1234 He42w354ol9`" (the AppHash parameter of
 * https://www.twilio.com/docs/verify/api/verification): `<#> ` in front, the hash last after one space, and
 * the full stop that would follow the code gives way to it. Google's SMS Retriever reads only a message of
 * at most 140 bytes (one segment) that contains the 11-character hash
 * (https://developers.google.com/identity/sms-retriever/verify).
 */
export function verifyMessage(text: VerifyText): string {
  requireCode(text.code);
  const templates = templatesFor(text.locale);
  const message = fill(templates.message, text.friendlyName, text.code);
  if (text.appHash === null) return text.doNotShare ? message + templates.doNotShare : message;
  const body = text.doNotShare ? message + templates.doNotShare : withoutStopAfterCode(message, text.code);
  return `<#> ${body} ${text.appHash}`;
}

/** The text a voice call reads: the code's digits separated so that each is spoken ("1, 2, 3, 4, 5, 6"), said twice, in the language. */
export function verifySpoken(text: Omit<VerifyText, "appHash" | "doNotShare">): string {
  requireCode(text.code);
  const templates = templatesFor(text.locale);
  // Spelled out one character at a time, so that 123456 is not read as "one hundred twenty-three thousand…".
  const digits = [...text.code].join(templates.pause);
  return fill(templates.spoken, text.friendlyName, digits);
}

/** The closest supported locale for a Twilio Locale value (`pt-BR`→`pt`, `zh-HK`→`zh`, `EN`→`en`), or null when the language is not one of VERIFY_LOCALES. */
export function verifyLocale(tag: string): string | null {
  // A BCP 47-shaped tag, `-` or `_` between its parts; only the language decides, as every supported
  // language has one text (zh-HK and zh-TW read the simplified Chinese one).
  const match = /^([a-z]{2,3})(?:[-_][a-z0-9]{1,8})*$/i.exec(tag.trim());
  const language = match?.[1]?.toLowerCase() ?? null;
  return language !== null && Object.hasOwn(VERIFY_TEMPLATES, language) ? language : null;
}

function templatesFor(locale: string): VerifyTemplates {
  return VERIFY_TEMPLATES[verifyLocale(locale) ?? "en"] ?? (VERIFY_TEMPLATES.en as VerifyTemplates);
}

/**
 * Fills the placeholders in one pass, so that a friendly name containing "{code}" stays text and cannot
 * pull the code into a place the template did not put it.
 */
function fill(template: string, friendlyName: string, code: string): string {
  // `{digits}` only appears in the spoken texts, which are filled with the code already spelled out.
  return template.replace(/\{(friendly_name|code|digits)\}/g, (_, name: string) => (name === "friendly_name" ? friendlyName : code));
}

/** "…is: 1234." → "…is: 1234", as in Twilio's AppHash example; a text that does not end with the code stays whole. */
function withoutStopAfterCode(message: string, code: string): string {
  for (const stop of [".", "。"]) {
    if (message.endsWith(`${code}${stop}`)) return message.slice(0, -stop.length);
  }
  return message;
}

function requireCode(code: string): void {
  if (code.length === 0) throw new TypeError("A Verify text needs a code; got an empty string.");
}
