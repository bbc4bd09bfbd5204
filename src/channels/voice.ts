/**
 * What a voice call says: an introduction, the code digit by digit (commas make the voice pause), and
 * the code once more. Languages are Twilio's <Say> language codes for its standard voices.
 */
const VOICE: Readonly<Record<string, { language: string; intro: string; again: string }>> = {
  en: { language: "en-US", intro: "Your verification code is", again: "Once again, your code is" },
  es: { language: "es-MX", intro: "Su código de verificación es", again: "Repito, su código es" },
  pt: { language: "pt-BR", intro: "O seu código de verificação é", again: "Repetindo, o seu código é" },
  fr: { language: "fr-FR", intro: "Votre code de vérification est", again: "Je répète, votre code est" },
  de: { language: "de-DE", intro: "Ihr Bestätigungscode lautet", again: "Noch einmal, Ihr Code lautet" },
  it: { language: "it-IT", intro: "Il suo codice di verifica è", again: "Ripeto, il suo codice è" },
  nl: { language: "nl-NL", intro: "Uw verificatiecode is", again: "Nogmaals, uw code is" },
  pl: { language: "pl-PL", intro: "Twój kod weryfikacyjny to", again: "Powtarzam, Twój kod to" },
  sv: { language: "sv-SE", intro: "Din verifieringskod är", again: "Jag upprepar, din kod är" },
  ru: { language: "ru-RU", intro: "Ваш код подтверждения", again: "Повторяю, ваш код" },
  zh: { language: "cmn-CN", intro: "您的验证码是", again: "再说一遍，您的验证码是" },
  ja: { language: "ja-JP", intro: "認証コードは", again: "もう一度繰り返します。認証コードは" },
};

const escapeXml = (text: string) => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The TwiML of a call that reads `code` twice in `locale` (English when the locale has no voice). */
export function voiceTwiml(code: string, locale: string): string {
  const voice = VOICE[locale] ?? VOICE[locale.split("-")[0] ?? ""] ?? (VOICE.en as (typeof VOICE)[string]);
  const digits = [...code].join(", ");
  const say = (text: string) => `<Say language="${voice.language}">${escapeXml(text)}</Say>`;
  return `<Response>${say(`${voice.intro}: ${digits}.`)}<Pause length="1"/>${say(`${voice.again}: ${digits}.`)}</Response>`;
}

export const VOICE_LOCALES = Object.keys(VOICE);
