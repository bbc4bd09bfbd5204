import type { Purpose } from "../records.js";

/** `{code}` and `{minutes}` are filled in; `{code}` comes first so that it shows in a notification preview. */
export type SmsTemplates = Record<Purpose, string>;

/**
 * The built-in SMS texts, one per purpose and language, written to read naturally to a native speaker
 * and to fit one SMS segment with a 10-digit code: GSM-7 (160 characters) where the language allows it,
 * UCS-2 (70) where its script needs it (test/i18n.test.ts checks every one).
 */
export const SMS_TEMPLATES: Readonly<Record<string, SmsTemplates>> = {
  en: {
    registration: "{code} is your code to confirm your number. It expires in {minutes} min. Never share it.",
    login: "{code} is your sign-in code. It expires in {minutes} min. Never share it.",
    password_reset: "{code} is your password reset code. It expires in {minutes} min. If you didn't ask for it, ignore this message.",
  },
  es: {
    registration: "{code} es tu código para confirmar tu número. Vence en {minutes} min.",
    login: "{code} es tu código de acceso. Vence en {minutes} min. No lo compartas.",
    password_reset: "{code} es tu código para cambiar la contraseña. Vence en {minutes} min.",
  },
  pt: {
    registration: "{code} é o seu código para confirmar o número. Expira em {minutes} min.",
    login: "{code} é o seu código de acesso. Expira em {minutes} min. Não o partilhe.",
    password_reset: "{code} é o seu código para redefinir a senha. Expira em {minutes} min.",
  },
  fr: {
    registration: "{code} est votre code pour confirmer votre numéro. Il expire dans {minutes} min. Ne le partagez jamais.",
    login: "{code} est votre code de connexion. Il expire dans {minutes} min. Ne le partagez jamais.",
    password_reset:
      "{code} est votre code de réinitialisation du mot de passe. Il expire dans {minutes} min. Si vous ne l'avez pas demandé, ignorez ce message.",
  },
  de: {
    registration: "{code} ist Ihr Code zur Bestätigung Ihrer Nummer. Gültig für {minutes} Min. Geben Sie ihn nicht weiter.",
    login: "{code} ist Ihr Anmeldecode. Gültig für {minutes} Min. Geben Sie ihn nicht weiter.",
    password_reset:
      "{code} ist Ihr Code zum Zurücksetzen des Passworts. Gültig für {minutes} Min. Falls Sie ihn nicht angefordert haben, ignorieren Sie diese Nachricht.",
  },
  it: {
    registration: "{code} è il tuo codice per confermare il numero. Scade tra {minutes} min. Non condividerlo con nessuno.",
    login: "{code} è il tuo codice di accesso. Scade tra {minutes} min. Non condividerlo con nessuno.",
    password_reset:
      "{code} è il tuo codice per reimpostare la password. Scade tra {minutes} min. Se non l'hai richiesto, ignora questo messaggio.",
  },
  nl: {
    registration: "{code} is je code om je nummer te bevestigen. Geldig voor {minutes} min. Deel deze code met niemand.",
    login: "{code} is je inlogcode. Geldig voor {minutes} min. Deel deze code met niemand.",
    password_reset:
      "{code} is je code om je wachtwoord opnieuw in te stellen. Geldig voor {minutes} min. Niet aangevraagd? Negeer dit bericht.",
  },
  pl: {
    registration: "{code} to Twój kod potwierdzenia numeru. Ważny {minutes} min.",
    login: "{code} to Twój kod logowania. Ważny {minutes} min. Nie podawaj go nikomu.",
    password_reset: "{code} to Twój kod do zmiany hasła. Ważny {minutes} min.",
  },
  sv: {
    registration: "{code} är din kod för att bekräfta ditt nummer. Giltig i {minutes} min. Dela den aldrig med någon.",
    login: "{code} är din inloggningskod. Giltig i {minutes} min. Dela den aldrig med någon.",
    password_reset:
      "{code} är din kod för att återställa lösenordet. Giltig i {minutes} min. Har du inte begärt den? Ignorera meddelandet.",
  },
  ru: {
    registration: "{code} — код подтверждения номера. Действует {minutes} мин.",
    login: "{code} — код для входа. Действует {minutes} мин. Никому его не сообщайте.",
    password_reset: "{code} — код для сброса пароля. Действует {minutes} мин.",
  },
  zh: {
    registration: "{code} 是您的手机号验证码，{minutes} 分钟内有效。请勿告诉他人。",
    login: "{code} 是您的登录验证码，{minutes} 分钟内有效。请勿告诉他人。",
    password_reset: "{code} 是您的密码重置验证码，{minutes} 分钟内有效。如非本人操作，请忽略本短信。",
  },
  ja: {
    registration: "{code} は電話番号の確認コードです。有効期限は{minutes}分です。他人に教えないでください。",
    login: "{code} はログイン用の確認コードです。有効期限は{minutes}分です。他人に教えないでください。",
    password_reset: "{code} はパスワード再設定用のコードです。有効期限は{minutes}分です。心当たりがない場合は無視してください。",
  },
};

/**
 * The email channel's own texts, where a language's SMS text speaks of a phone: the registration code
 * confirms an address there, not a number, and Chinese says "this email" where the SMS says "this SMS".
 * Every other purpose and language reads the same by email as by SMS. No segment to fit: an email has room.
 */
export const EMAIL_TEMPLATES: Readonly<Record<string, Partial<SmsTemplates>>> = {
  en: { registration: "{code} is your code to confirm your email address. It expires in {minutes} min. Never share it." },
  es: { registration: "{code} es tu código para confirmar tu correo electrónico. Vence en {minutes} min." },
  pt: { registration: "{code} é o seu código para confirmar o seu e-mail. Expira em {minutes} min." },
  fr: { registration: "{code} est votre code pour confirmer votre adresse e-mail. Il expire dans {minutes} min. Ne le partagez jamais." },
  de: { registration: "{code} ist Ihr Code zur Bestätigung Ihrer E-Mail-Adresse. Gültig für {minutes} Min. Geben Sie ihn nicht weiter." },
  it: { registration: "{code} è il tuo codice per confermare l'indirizzo email. Scade tra {minutes} min. Non condividerlo con nessuno." },
  nl: { registration: "{code} is je code om je e-mailadres te bevestigen. Geldig voor {minutes} min. Deel deze code met niemand." },
  pl: { registration: "{code} to Twój kod potwierdzenia adresu e-mail. Ważny {minutes} min." },
  sv: { registration: "{code} är din kod för att bekräfta din e-postadress. Giltig i {minutes} min. Dela den aldrig med någon." },
  ru: { registration: "{code} — код подтверждения адреса электронной почты. Действует {minutes} мин." },
  zh: {
    registration: "{code} 是您的邮箱验证码，{minutes} 分钟内有效。请勿告诉他人。",
    password_reset: "{code} 是您的密码重置验证码，{minutes} 分钟内有效。如非本人操作，请忽略本邮件。",
  },
  ja: { registration: "{code} はメールアドレスの確認コードです。有効期限は{minutes}分です。他人に教えないでください。" },
};

/** The language most numbers of a country read, for a request that names none. */
export const COUNTRY_LANGUAGE: Readonly<Record<string, string>> = {
  AR: "es",
  BO: "es",
  CL: "es",
  CO: "es",
  CR: "es",
  CU: "es",
  DO: "es",
  EC: "es",
  ES: "es",
  GT: "es",
  HN: "es",
  MX: "es",
  NI: "es",
  PA: "es",
  PE: "es",
  PR: "es",
  PY: "es",
  SV: "es",
  UY: "es",
  VE: "es",
  BR: "pt",
  PT: "pt",
  AO: "pt",
  MZ: "pt",
  FR: "fr",
  LU: "fr",
  MC: "fr",
  SN: "fr",
  CI: "fr",
  DE: "de",
  AT: "de",
  LI: "de",
  IT: "it",
  SM: "it",
  NL: "nl",
  PL: "pl",
  SE: "sv",
  RU: "ru",
  BY: "ru",
  KZ: "ru",
  CN: "zh",
  TW: "zh",
  HK: "zh",
  JP: "ja",
};
