import { AsyncLocalStorage } from "node:async_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import twilio from "twilio";
import type RequestClient from "twilio/lib/base/RequestClient.js";
import type * as ResponseModule from "twilio/lib/http/response.js";
import type { TwilioConfig } from "../config.js";
import type { Channel, ChannelName, DeliveryOutcome, OutgoingMessage } from "./channel.js";
import { voiceTwiml } from "./voice.js";

const TWILIO_API_ORIGIN = /^https:\/\/[a-z0-9.-]+\.twilio\.com/;

/** Twilio error codes for a recipient the provider will not reach (by code, never by message text). */
const REJECTED_CODES = new Set([21408, 21610, 21612, 21614, 21635]);
const INVALID_NUMBER_CODES = new Set([21211]);
const MAX_THROTTLE_RETRIES = 3;
/**
 * A retry after a 429 starts only with this much of the deadline left after its wait: one started with a
 * few milliseconds would time out, and a timeout claims the message may have gone out when Twilio refused it.
 */
const MIN_RETRY_BUDGET_MS = 250;

/** The deadline of the send in progress, read by the HTTP client to size each request's timeout. */
const deadlines = new AsyncLocalStorage<number>();

/**
 * The SDK's own request client, with two changes: every request may go to another base URL (a local
 * Twilio-compatible server, the way Twilio documents custom clients for mocks), and each request's
 * timeout is what is left of the send's deadline.
 */
class VericodeRequestClient extends twilio.RequestClient {
  readonly #baseUrl: string | null;

  constructor(baseUrl: string | null, timeoutMs: number) {
    super({ timeout: timeoutMs, keepAlive: true });
    this.#baseUrl = baseUrl;
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<ResponseModule.default<TData>> {
    const deadline = deadlines.getStore();
    const uri = this.#baseUrl === null ? opts.uri : opts.uri.replace(TWILIO_API_ORIGIN, this.#baseUrl);
    const timeout = deadline === undefined ? opts.timeout : Math.max(1, deadline - Date.now());
    return super.request({ ...opts, uri, ...(timeout === undefined ? {} : { timeout }) });
  }
}

export interface TwilioChannelOptions {
  /** Where Twilio posts this message's status changes (PUBLIC_BASE_URL + the callback path). */
  statusCallback?: string | null;
}

/** What the Twilio channels share: the SDK client, and one send loop with its deadline and 429 retries. */
abstract class TwilioChannel implements Channel {
  abstract readonly name: ChannelName;
  protected readonly client: twilio.Twilio;
  protected readonly config: TwilioConfig;
  protected readonly statusCallback: string | null;

  constructor(config: TwilioConfig, options: TwilioChannelOptions = {}) {
    this.config = config;
    this.statusCallback = options.statusCallback ?? null;
    this.client = twilio(config.username, config.password, {
      accountSid: config.accountSid,
      httpClient: new VericodeRequestClient(config.apiBaseUrl, config.timeoutMs),
    });
  }

  /** One provider call for the message: it creates the resource and answers what it was told. */
  protected abstract create(message: OutgoingMessage): Promise<{ sid: string; status: string; priceMicros: number | null }>;

  async send(message: OutgoingMessage): Promise<DeliveryOutcome> {
    for (let attempt = 0; ; attempt++) {
      if (Date.now() >= message.deadline) {
        return { ok: false, kind: "timeout", providerCode: null, message: "The send deadline passed." };
      }
      try {
        const created = await deadlines.run(message.deadline, () => this.create(message));
        return { ok: true, providerMessageId: created.sid, deliveryStatus: created.status, priceMicros: created.priceMicros };
      } catch (error) {
        const outcome = classify(error);
        if (outcome.kind !== "throttled" || attempt >= MAX_THROTTLE_RETRIES) return outcome;
        // A 429 was not accepted, so it is safe to retry: full-jitter backoff, and only with time left
        // for the retry itself; otherwise the answer stays "throttled".
        const delay = Math.floor(Math.random() * Math.min(2000, 200 * 2 ** attempt));
        if (Date.now() + delay + MIN_RETRY_BUDGET_MS > message.deadline) return outcome;
        await sleep(delay);
      }
    }
  }

  /** The sender: the messaging service when configured, else `from`. */
  protected sender(from: string): { from: string } | { messagingServiceSid: string } {
    return this.config.messagingServiceSid === null ? { from } : { messagingServiceSid: this.config.messagingServiceSid };
  }

  protected callback(): { statusCallback: string } | Record<string, never> {
    return this.statusCallback === null ? {} : { statusCallback: this.statusCallback };
  }
}

/** SMS through Twilio's Messages API, with the official SDK. */
export class TwilioSmsChannel extends TwilioChannel {
  readonly name = "sms";

  protected async create(message: OutgoingMessage) {
    const created = await this.client.messages.create({
      to: message.to,
      body: message.body,
      // Twilio drops a message still queued after this many seconds: a late code is useless.
      validityPeriod: validity(message.ttlSeconds),
      ...this.sender(this.config.phoneNumber ?? ""),
      ...this.callback(),
    });
    return { sid: created.sid, status: created.status, priceMicros: twilioPrice(created.price, created.priceUnit) };
  }
}

/**
 * WhatsApp through the same Messages API, to `whatsapp:` addresses. With TWILIO_WHATSAPP_CONTENT_SID the
 * message is the approved authentication template (ContentSid, the code as variable 1), which WhatsApp
 * requires outside a conversation window; without it, the localized text.
 */
export class TwilioWhatsAppChannel extends TwilioChannel {
  readonly name = "whatsapp";

  protected async create(message: OutgoingMessage) {
    const from = this.config.whatsappFrom ?? `whatsapp:${this.config.phoneNumber ?? ""}`;
    const content =
      this.config.whatsappContentSid === null
        ? { body: message.body }
        : { contentSid: this.config.whatsappContentSid, contentVariables: JSON.stringify({ 1: message.code }) };
    const created = await this.client.messages.create({
      to: `whatsapp:${message.to}`,
      ...content,
      validityPeriod: validity(message.ttlSeconds),
      ...this.sender(from),
      ...this.callback(),
    });
    return { sid: created.sid, status: created.status, priceMicros: twilioPrice(created.price, created.priceUnit) };
  }
}

/**
 * A voice call through Twilio's Calls API with inline TwiML: the code read digit by digit, twice, in the
 * language of the message (voice.ts). Calls come from TWILIO_PHONE_NUMBER.
 */
export class TwilioVoiceChannel extends TwilioChannel {
  readonly name = "voice";

  protected async create(message: OutgoingMessage) {
    const created = await this.client.calls.create({
      to: message.to,
      from: this.config.phoneNumber ?? "",
      twiml: voiceTwiml(message.code, message.locale),
      // An unanswered call is not left ringing for the code's whole life.
      timeout: 30,
      ...(this.statusCallback === null
        ? {}
        : { statusCallback: this.statusCallback, statusCallbackEvent: ["initiated", "ringing", "answered", "completed"] }),
    });
    return { sid: created.sid, status: created.status, priceMicros: twilioPrice(created.price, created.priceUnit) };
  }
}

function validity(ttlSeconds: number): number {
  return Math.min(Math.max(Math.round(ttlSeconds), 1), 36_000);
}

/**
 * Twilio reports a price as a negative decimal string ("-0.00750") in `priceUnit`, usually only once the
 * message is sent (null at creation). Only US dollars count against the budget.
 */
export function twilioPrice(price: string | null | undefined, unit: string | null | undefined): number | null {
  if (price === null || price === undefined || price === "" || (unit ?? "USD").toUpperCase() !== "USD") return null;
  const amount = Math.abs(Number(price));
  return Number.isFinite(amount) ? Math.round(amount * 1_000_000) : null;
}

/** Maps an SDK failure to an outcome by Twilio's error code and HTTP status. */
export function classify(error: unknown): Extract<DeliveryOutcome, { ok: false }> {
  if (error instanceof twilio.RestException) {
    // Twilio sends `"code": null` on some 5xx bodies: treat null and absent alike.
    const providerCode = typeof error.code === "number" ? String(error.code) : null;
    const code = typeof error.code === "number" ? error.code : -1;
    if (INVALID_NUMBER_CODES.has(code)) return { ok: false, kind: "invalid_number", providerCode, message: error.message };
    if (REJECTED_CODES.has(code)) return { ok: false, kind: "rejected", providerCode, message: error.message };
    if (error.status === 429 || code === 20429) return { ok: false, kind: "throttled", providerCode, message: error.message };
    return { ok: false, kind: "failed", providerCode: providerCode ?? `http_${error.status}`, message: error.message };
  }
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  if (code === "ECONNABORTED" || code === "ETIMEDOUT" || code === "ESOCKETTIMEDOUT") {
    return { ok: false, kind: "timeout", providerCode: "timeout", message: "Twilio did not answer in time." };
  }
  return {
    ok: false,
    kind: "failed",
    providerCode: typeof code === "string" ? code : null,
    message: error instanceof Error ? error.message : "Twilio request failed.",
  };
}
