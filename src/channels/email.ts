import nodemailer, { type Transporter } from "nodemailer";
import type { Channel, DeliveryOutcome, OutgoingMessage } from "./channel.js";

/** The subject line by language; the code comes first so that it shows in the inbox list. */
const SUBJECT: Readonly<Record<string, string>> = {
  en: "is your verification code",
  es: "es tu código de verificación",
  pt: "é o seu código de verificação",
  fr: "est votre code de vérification",
  de: "ist Ihr Bestätigungscode",
  it: "è il tuo codice di verifica",
  nl: "is je verificatiecode",
  pl: "to Twój kod weryfikacyjny",
  sv: "är din verifieringskod",
  ru: "— ваш код подтверждения",
  zh: "是您的验证码",
  ja: "は確認コードです",
};

const escapeHtml = (text: string) =>
  text.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

/** Subject, plain text and HTML of the email for a code; `text` is the localized message (the SMS text). */
export function emailContent(code: string, locale: string, text: string): { subject: string; text: string; html: string } {
  const language = locale.split("-")[0] ?? "en";
  const subject = `${code} ${SUBJECT[locale] ?? SUBJECT[language] ?? SUBJECT.en}`;
  const html = [
    `<!doctype html><html lang="${escapeHtml(language)}"><body style="font-family:system-ui,sans-serif;color:#111">`,
    `<p style="font-size:32px;font-weight:700;letter-spacing:6px;margin:24px 0">${escapeHtml(code)}</p>`,
    `<p style="font-size:16px">${escapeHtml(text)}</p>`,
    "</body></html>",
  ].join("");
  return { subject, text, html };
}

export interface SmtpConfig {
  /** smtp://user:pass@host:587 or smtps://…:465 */
  url: string;
  /** The From header: an address, or `Name <address>`. */
  from: string;
}

/** The commands whose permanent refusal (5xx) is about this recipient or this message, not the server or its account. */
const RECIPIENT_COMMANDS = new Set(["RCPT TO", "DATA"]);

/**
 * Email over SMTP with nodemailer: a text and an HTML part, in the message's language. A permanent SMTP
 * refusal (5xx) of the recipient or of the message is a rejected recipient; a temporary one (4xx), a refusal
 * of the sender, the credentials or the connection itself, or a lost connection a failure; running out of
 * time, the deadline's or a transport timeout, a timeout (the message may still be delivered).
 */
export class SmtpEmailChannel implements Channel {
  readonly name = "email";
  readonly #transport: Transporter;
  readonly #from: string;

  constructor(config: SmtpConfig, options: { timeoutMs?: number } = {}) {
    const timeout = options.timeoutMs ?? 10_000;
    const url = new URL(config.url);
    const secure = url.protocol === "smtps:";
    this.#transport = nodemailer.createTransport({
      host: url.hostname,
      port: url.port === "" ? (secure ? 465 : 587) : Number(url.port),
      secure,
      ...(url.username === "" ? {} : { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } }),
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
    });
    this.#from = config.from;
  }

  async send(message: OutgoingMessage): Promise<DeliveryOutcome> {
    const content = emailContent(message.code, message.locale, message.body);
    const left = message.deadline - Date.now();
    if (left <= 0) return { ok: false, kind: "timeout", providerCode: null, message: "The send deadline passed." };
    // At the deadline nodemailer closes the connection: the send is over then, not at its own socket timeout.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), left);
    try {
      const sent = await this.#transport.sendMail({
        from: message.sender === undefined ? this.#from : { address: message.sender.address, name: message.sender.name ?? "" },
        to: message.to,
        subject: content.subject,
        text: content.text,
        html: content.html,
        headers: { "X-Vericode-Id": message.reference },
        signal: deadline.signal,
      });
      if ((sent.rejected ?? []).length > 0)
        return { ok: false, kind: "rejected", providerCode: "550", message: "The mail server refused the recipient." };
      return { ok: true, providerMessageId: sent.messageId ?? null, deliveryStatus: "sent", priceMicros: 0 };
    } catch (error) {
      const { responseCode, code, command } = error as { responseCode?: unknown; code?: unknown; command?: unknown };
      if (deadline.signal.aborted || code === "ETIMEDOUT")
        return { ok: false, kind: "timeout", providerCode: "timeout", message: "The mail server did not answer in time." };
      const providerCode = typeof responseCode === "number" ? String(responseCode) : typeof code === "string" ? code : null;
      const text = error instanceof Error ? error.message : "The mail server failed.";
      if (typeof responseCode === "number" && responseCode >= 500 && typeof command === "string" && RECIPIENT_COMMANDS.has(command))
        return { ok: false, kind: "rejected", providerCode, message: text };
      return { ok: false, kind: "failed", providerCode, message: text };
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.#transport.close();
  }
}
