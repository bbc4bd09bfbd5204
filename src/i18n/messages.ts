import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Purpose } from "../records.js";
import { PURPOSES } from "../records.js";
import { COUNTRY_LANGUAGE, EMAIL_TEMPLATES, SMS_TEMPLATES, type SmsTemplates } from "./templates.js";

/** Where a request's language can come from, most specific first. */
export interface LocaleHints {
  /** The request's `locale` (`es-CR`). */
  requested?: string | null;
  /** The Accept-Language header. */
  acceptLanguage?: string | null;
  /** The number's ISO country. */
  country?: string | null;
}

/**
 * The texts vericode sends, in the user's language: built-in templates (templates.ts), overridden per
 * locale and purpose by TEMPLATES_DIR, chosen from the request's `locale`, else Accept-Language, else the
 * number's country, else DEFAULT_LOCALE; `es-CR` falls back to `es`, anything unknown to English.
 */
export class Messages {
  readonly #sms: ReadonlyMap<string, SmsTemplates>;
  readonly #defaultLocale: string;
  readonly #webOtpDomain: string | null;

  constructor(options: { overrides?: Record<string, Partial<SmsTemplates>>; defaultLocale?: string; webOtpDomain?: string | null } = {}) {
    const sms = new Map<string, SmsTemplates>(Object.entries(SMS_TEMPLATES).map(([locale, t]) => [locale, { ...t }]));
    for (const [locale, templates] of Object.entries(options.overrides ?? {})) {
      const key = locale.toLowerCase();
      const base = sms.get(key) ?? sms.get(key.split("-")[0] ?? "") ?? (SMS_TEMPLATES.en as SmsTemplates);
      sms.set(key, { ...base, ...templates });
    }
    this.#sms = sms;
    this.#defaultLocale = (options.defaultLocale ?? "en").toLowerCase();
    this.#webOtpDomain = options.webOtpDomain ?? null;
  }

  /** The locales with templates, built-in and overridden. */
  get locales(): string[] {
    return [...this.#sms.keys()];
  }

  /** The best locale the templates have for these hints (always one: English at worst). */
  resolve(hints: LocaleHints): string {
    const candidates = [
      hints.requested ?? null,
      ...parseAcceptLanguage(hints.acceptLanguage ?? null),
      hints.country === undefined || hints.country === null ? null : (COUNTRY_LANGUAGE[hints.country] ?? null),
      this.#defaultLocale,
    ];
    for (const candidate of candidates) {
      const found = candidate === null ? null : this.#available(candidate);
      if (found !== null) return found;
    }
    return "en";
  }

  /** The SMS for a code; with WEBOTP_DOMAIN, ends with the origin-bound line browsers autofill from. */
  sms(locale: string, purpose: Purpose, code: string, ttlSeconds: number): string {
    const text = this.text(locale, purpose, code, ttlSeconds);
    return this.#webOtpDomain === null ? text : `${text}\n\n@${this.#webOtpDomain} #${code}`;
  }

  /** The message for a code, as every channel words it (the SMS without its WebOTP line). */
  text(locale: string, purpose: Purpose, code: string, ttlSeconds: number): string {
    const templates = this.#sms.get(this.#available(locale) ?? "en") ?? (SMS_TEMPLATES.en as SmsTemplates);
    return fill(templates[purpose], code, ttlSeconds);
  }

  /**
   * The email for a code: the email channel's own text where the language has one for this purpose
   * (EMAIL_TEMPLATES: an address, not a number, is confirmed), else the same text as every channel's.
   */
  email(locale: string, purpose: Purpose, code: string, ttlSeconds: number): string {
    const language = (this.#available(locale) ?? "en").split("-")[0] as string;
    const template = EMAIL_TEMPLATES[language]?.[purpose];
    return template === undefined ? this.text(locale, purpose, code, ttlSeconds) : fill(template, code, ttlSeconds);
  }

  /** `es-CR` → `es-cr` if there are templates for it, else `es`, else null. */
  #available(tag: string): string | null {
    const lower = tag.trim().toLowerCase();
    if (this.#sms.has(lower)) return lower;
    const language = lower.split(/[-_]/)[0] ?? "";
    return this.#sms.has(language) ? language : null;
  }
}

/** A template with its code and its lifetime in whole minutes (at least 1) filled in. */
function fill(template: string, code: string, ttlSeconds: number): string {
  return template.replaceAll("{code}", code).replaceAll("{minutes}", String(Math.max(1, Math.round(ttlSeconds / 60))));
}

/** Accept-Language's tags, best first (RFC 9110 §12.5.4: q-values, `*` ignored). */
export function parseAcceptLanguage(header: string | null): string[] {
  if (header === null) return [];
  return header
    .split(",")
    .map((part, index) => {
      const [tag = "", ...params] = part.trim().split(";");
      const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
      return { tag: tag.trim(), q: q === undefined ? 1 : Number(q.slice(2)), index };
    })
    .filter((entry) => entry.tag !== "" && entry.tag !== "*" && Number.isFinite(entry.q) && entry.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index)
    .map((entry) => entry.tag);
}

/**
 * Reads TEMPLATES_DIR: one `<locale>.json` per language (`es.json`, `es-CR.json`), each
 * `{"sms": {"login": "…{code}…"}}`; a template must contain `{code}`. Problems are pushed, not thrown.
 */
export function readTemplatesDir(dir: string, problems: string[]): Record<string, Partial<SmsTemplates>> {
  const overrides: Record<string, Partial<SmsTemplates>> = {};
  if (!existsSync(dir)) {
    problems.push(`TEMPLATES_DIR=${JSON.stringify(dir)} does not exist.`);
    return overrides;
  }
  for (const file of readdirSync(dir).filter((name) => name.endsWith(".json"))) {
    const locale = file.slice(0, -".json".length);
    if (!/^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})?$/.test(locale)) {
      problems.push(`TEMPLATES_DIR file ${file} is not named after a locale (es.json, es-CR.json).`);
      continue;
    }
    try {
      const parsed = JSON.parse(readFileSync(join(dir, file), "utf8")) as { sms?: Record<string, unknown> };
      const sms: Partial<SmsTemplates> = {};
      for (const [purpose, text] of Object.entries(parsed.sms ?? {})) {
        if (!(PURPOSES as readonly string[]).includes(purpose) || typeof text !== "string" || !text.includes("{code}")) {
          problems.push(
            `TEMPLATES_DIR ${file}: sms.${purpose} must be a text containing {code} for registration, login or password_reset.`,
          );
          continue;
        }
        sms[purpose as Purpose] = text;
      }
      overrides[locale] = sms;
    } catch (error) {
      problems.push(`TEMPLATES_DIR ${file} is not valid JSON: ${(error as Error).message}.`);
    }
  }
  return overrides;
}
