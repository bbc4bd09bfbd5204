import { AsyncLocalStorage } from "node:async_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import twilio from "twilio";
import type RequestClient from "twilio/lib/base/RequestClient.js";
import type * as ResponseModule from "twilio/lib/http/response.js";
import type { TwilioConfig } from "../config.js";
import type { Channel, DeliveryOutcome, OutgoingMessage } from "./channel.js";

const TWILIO_API_ORIGIN = /^https:\/\/[a-z0-9.-]+\.twilio\.com/;

/** Twilio error codes for a recipient the provider will not reach (by code, never by message text). */
const REJECTED_CODES = new Set([21408, 21610, 21612, 21614, 21635]);
const INVALID_NUMBER_CODES = new Set([21211]);
const MAX_THROTTLE_RETRIES = 3;

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

/** SMS through Twilio's Messages API, with the official SDK. */
export class TwilioSmsChannel implements Channel {
  readonly name = "sms";
  readonly #client: twilio.Twilio;
  readonly #config: TwilioConfig;
  readonly #statusCallback: string | null;

  constructor(config: TwilioConfig, options: { statusCallback?: string | null } = {}) {
    this.#config = config;
    this.#statusCallback = options.statusCallback ?? null;
    this.#client = twilio(config.username, config.password, {
      accountSid: config.accountSid,
      httpClient: new VericodeRequestClient(config.apiBaseUrl, config.timeoutMs),
    });
  }

  async send(message: OutgoingMessage): Promise<DeliveryOutcome> {
    const params: Parameters<twilio.Twilio["messages"]["create"]>[0] = {
      to: message.to,
      body: message.body,
      // Twilio drops a message still queued after this many seconds: a late code is useless.
      validityPeriod: Math.min(Math.max(Math.round(message.ttlSeconds), 1), 36_000),
      ...(this.#config.messagingServiceSid === null
        ? { from: this.#config.phoneNumber ?? "" }
        : { messagingServiceSid: this.#config.messagingServiceSid }),
      ...(this.#statusCallback === null ? {} : { statusCallback: this.#statusCallback }),
    };
    for (let attempt = 0; ; attempt++) {
      if (Date.now() >= message.deadline) {
        return { ok: false, kind: "timeout", providerCode: null, message: "The send deadline passed." };
      }
      try {
        const created = await deadlines.run(message.deadline, () => this.#client.messages.create(params));
        return {
          ok: true,
          providerMessageId: created.sid,
          deliveryStatus: created.status,
          priceMicros: twilioPrice(created.price, created.priceUnit),
        };
      } catch (error) {
        const outcome = classify(error);
        if (outcome.kind !== "throttled" || attempt >= MAX_THROTTLE_RETRIES) return outcome;
        // A 429 was not accepted, so it is safe to retry: full-jitter backoff, within the deadline only.
        const delay = Math.floor(Math.random() * Math.min(2000, 200 * 2 ** attempt));
        if (Date.now() + delay >= message.deadline) return outcome;
        await sleep(delay);
      }
    }
  }
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
