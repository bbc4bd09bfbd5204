import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import twilio from "twilio";
import type { TwilioConfig } from "../../src/config.js";
import { noteCode } from "./logs.js";

/**
 * A local server that speaks Twilio's Messages API wire format, for tests through the real `twilio`
 * SDK: form-encoded requests, HTTP Basic auth (account SID + auth token, or API key + secret), Twilio's
 * JSON bodies and error bodies, and the magic test numbers of Twilio's test credentials.
 * https://www.twilio.com/docs/iam/test-credentials
 */

export interface ReceivedMessage {
  sid: string;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  validityPeriod: string | null;
  statusCallback: string | null;
  /** A WhatsApp content template and its variables, when one was sent instead of a body. */
  contentSid: string | null;
  contentVariables: string | null;
  /** The Basic-auth user the request came with (account SID or API key SID). */
  authUser: string;
}

export interface ReceivedCall {
  sid: string;
  to: string;
  from: string;
  twiml: string;
  statusCallback: string | null;
}

export interface FakeTwilioOptions {
  accountSid?: string;
  authToken?: string;
  apiKey?: string;
  apiSecret?: string;
}

type Fault = { kind: "status"; status: number; code: number | null; message: string } | { kind: "hang" } | { kind: "slow"; ms: number };

/** Twilio's test "To" numbers and the error each one produces. */
const TO_ERRORS: Record<string, { code: number; message: (to: string) => string }> = {
  "+15005550001": { code: 21211, message: (to) => `The 'To' number ${to} is not a valid phone number.` },
  "+15005550002": {
    code: 21612,
    message: (to) => `The 'To' phone number: ${to}, is not currently reachable using the 'From' phone number.`,
  },
  "+15005550003": {
    code: 21408,
    message: (to) => `Permission to send an SMS has not been enabled for the region indicated by the 'To' number: ${to}.`,
  },
  "+15005550004": { code: 21610, message: () => "Attempt to send to unsubscribed recipient" },
  "+15005550009": { code: 21614, message: (to) => `'To' number ${to} is not a valid mobile number` },
};

/** Twilio's test "From" numbers and the error each one produces. */
const FROM_ERRORS: Record<string, { code: number; message: string }> = {
  "+15005550001": {
    code: 21212,
    message: "The 'From' number +15005550001 is not a valid phone number, shortcode, or alphanumeric sender ID.",
  },
  "+15005550007": {
    code: 21606,
    message: "The From phone number +15005550007 is not a valid, SMS-capable inbound phone number or short code for your account.",
  },
  "+15005550008": { code: 21611, message: "This 'From' number has exceeded the maximum number of queued messages." },
};

export class FakeTwilio {
  readonly accountSid: string;
  readonly authToken: string;
  readonly apiKey: string;
  readonly apiSecret: string;
  readonly messages: ReceivedMessage[] = [];
  readonly calls: ReceivedCall[] = [];
  /** Every request to the Messages endpoint, accepted or not. */
  requestCount = 0;
  readonly #faults: Fault[] = [];
  readonly #hanging = new Set<ServerResponse>();
  #server: Server | null = null;
  #url = "";

  constructor(options: FakeTwilioOptions = {}) {
    this.accountSid = options.accountSid ?? `AC${randomBytes(16).toString("hex")}`;
    this.authToken = options.authToken ?? randomBytes(16).toString("hex");
    this.apiKey = options.apiKey ?? `SK${randomBytes(16).toString("hex")}`;
    this.apiSecret = options.apiSecret ?? randomBytes(16).toString("hex");
  }

  get url(): string {
    return this.#url;
  }

  /** The environment that points vericode's Twilio channel at this server. */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      SMS_PROVIDER: "twilio",
      TWILIO_ACCOUNT_SID: this.accountSid,
      TWILIO_AUTH_TOKEN: this.authToken,
      TWILIO_PHONE_NUMBER: "+15005550006",
      TWILIO_API_BASE_URL: this.url,
      ...extra,
    };
  }

  /** The next `count` requests answer this HTTP status with Twilio's error body (429 → code 20429…). */
  failNext(status: number, options: { count?: number; code?: number | null; message?: string } = {}): void {
    const code = options.code === undefined ? (status === 429 ? 20429 : status >= 500 ? null : 20001) : options.code;
    const message = options.message ?? (status === 429 ? "Too Many Requests" : "Internal Server Error");
    for (let i = 0; i < (options.count ?? 1); i++) this.#faults.push({ kind: "status", status, code, message });
  }

  /** The next message is accepted, but its answer comes `ms` later (a slow provider, a request in flight). */
  slowNext(ms: number): void {
    this.#faults.push({ kind: "slow", ms });
  }

  /** The next `count` messages or calls are accepted but never get an answer (until the client gives up or the server closes). */
  hangNext(count = 1): void {
    for (let i = 0; i < count; i++) this.#faults.push({ kind: "hang" });
  }

  /** Requests accepted and left unanswered whose client is still waiting: a send that gave up closes its request. */
  get held(): number {
    return this.#hanging.size;
  }

  /** A channel configuration that talks to this server (what loadConfig makes of env()). */
  config(overrides: Partial<TwilioConfig> = {}): TwilioConfig {
    return {
      accountSid: this.accountSid,
      username: this.accountSid,
      password: this.authToken,
      authToken: this.authToken,
      whatsappFrom: null,
      whatsappContentSid: null,
      phoneNumber: "+15005550006",
      messagingServiceSid: null,
      apiBaseUrl: this.url,
      timeoutMs: 2000,
      ...overrides,
    };
  }

  /**
   * Posts a status callback for a message to the StatusCallback it was created with, signed the way
   * Twilio signs (the SDK's own getExpectedTwilioSignature), or with `signWith` instead of the auth token.
   */
  async callback(
    sid: string,
    status: string,
    options: { errorCode?: string; signWith?: string | null } = {},
  ): Promise<{ status: number; body: string }> {
    const message = this.messages.find((m) => m.sid === sid);
    if (message?.statusCallback == null) throw new Error(`message ${sid} has no StatusCallback`);
    const params: Record<string, string> = {
      AccountSid: this.accountSid,
      ApiVersion: "2010-04-01",
      From: message.from ?? "",
      MessageSid: sid,
      MessageStatus: status,
      SmsSid: sid,
      SmsStatus: status,
      To: message.to,
      ...(options.errorCode === undefined ? {} : { ErrorCode: options.errorCode }),
    };
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
    const key = options.signWith === undefined ? this.authToken : options.signWith;
    if (key !== null) headers["x-twilio-signature"] = twilio.getExpectedTwilioSignature(key, message.statusCallback, params);
    const response = await fetch(message.statusCallback, { method: "POST", headers, body: new URLSearchParams(params).toString() });
    return { status: response.status, body: await response.text() };
  }

  /** The code in the last message to `to`, read from its text. */
  lastCodeTo(to: string): string {
    const message = this.messages.filter((m) => m.to === to).at(-1);
    const code = message?.body.match(/\d{4,10}/)?.[0];
    if (code === undefined) throw new Error(`no code was sent to ${to}`);
    return code;
  }

  async start(): Promise<this> {
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        response.writeHead(500).end(String(error));
      });
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
    const { port } = this.#server.address() as AddressInfo;
    this.#url = `http://127.0.0.1:${port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const response of this.#hanging) response.destroy();
    this.#hanging.clear();
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.#server === null ? resolve() : this.#server.close(() => resolve())));
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request);
    const match = /^\/2010-04-01\/Accounts\/(AC[0-9a-f]{32})\/(Messages|Calls)\.json$/.exec(request.url ?? "");
    if (match === null || request.method !== "POST") {
      return sendError(response, 404, 20404, `The requested resource ${request.url ?? ""} was not found`);
    }
    this.requestCount++;
    const authUser = this.#authenticate(request.headers.authorization);
    if (authUser === null || match[1] !== this.accountSid) return sendError(response, 401, 20003, "Authenticate");
    if (request.headers["content-type"] !== "application/x-www-form-urlencoded") {
      return sendError(response, 400, 20001, "Content-Type must be application/x-www-form-urlencoded");
    }

    const fault = this.#faults.shift();
    if (fault?.kind === "status") return sendError(response, fault.status, fault.code, fault.message);

    const form = new URLSearchParams(body);
    if (match[2] === "Calls") return this.#call(form, response, fault);
    const to = form.get("To");
    const from = form.get("From");
    const messagingServiceSid = form.get("MessagingServiceSid");
    const text = form.get("Body");
    // The codes that reach "the phone", for the scan of the run's logs (test/support/global-setup.ts).
    for (const code of `${text ?? ""} ${form.get("ContentVariables") ?? ""}`.match(/\d{4,10}/g) ?? []) noteCode(code);
    if (to === null) return sendError(response, 400, 21604, "A 'To' phone number is required.");
    if (from === null && messagingServiceSid === null) return sendError(response, 400, 21603, "A 'From' phone number is required.");
    const contentSid = form.get("ContentSid");
    if ((text === null || text === "") && contentSid === null) return sendError(response, 400, 21602, "Message body is required.");
    const fromError = from === null ? undefined : FROM_ERRORS[from];
    if (fromError !== undefined) return sendError(response, 400, fromError.code, fromError.message);
    const toError = TO_ERRORS[to];
    if (toError !== undefined) return sendError(response, 400, toError.code, toError.message(to));

    const message: ReceivedMessage = {
      sid: `SM${randomBytes(16).toString("hex")}`,
      to,
      from,
      messagingServiceSid,
      body: text ?? "",
      contentSid,
      contentVariables: form.get("ContentVariables"),
      validityPeriod: form.get("ValidityPeriod"),
      statusCallback: form.get("StatusCallback"),
      authUser,
    };
    this.messages.push(message);
    if (await this.#holdBack(response, fault)) return;
    const now = new Date().toUTCString().replace("GMT", "+0000");
    sendJson(response, 201, {
      account_sid: this.accountSid,
      api_version: "2010-04-01",
      body: text,
      date_created: now,
      date_sent: null,
      date_updated: now,
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      from: from ?? null,
      messaging_service_sid: messagingServiceSid,
      num_media: "0",
      num_segments: "1",
      price: null,
      price_unit: "USD",
      sid: message.sid,
      status: messagingServiceSid === null ? "queued" : "accepted",
      subresource_uris: { media: `/2010-04-01/Accounts/${this.accountSid}/Messages/${message.sid}/Media.json` },
      to,
      uri: `/2010-04-01/Accounts/${this.accountSid}/Messages/${message.sid}.json`,
    });
  }

  /** Calls.json: a call with inline TwiML, answered the way Twilio answers (201, status queued). */
  async #call(form: URLSearchParams, response: ServerResponse, fault: Fault | undefined): Promise<void> {
    const to = form.get("To");
    const from = form.get("From");
    const twiml = form.get("Twiml");
    // A call says the code digit by digit: note the digits run together.
    const spoken = (twiml ?? "").match(/(?:\d[\s,.]+){3,9}\d/)?.[0]?.replace(/\D/g, "");
    if (spoken !== undefined) noteCode(spoken);
    const toError = to === null ? undefined : TO_ERRORS[to];
    if (to === null) sendError(response, 400, 21201, "No 'To' number is specified");
    else if (from === null) sendError(response, 400, 21213, "No 'From' number is specified");
    else if (twiml === null && form.get("Url") === null) sendError(response, 400, 21205, "Url parameter is required.");
    else if (toError !== undefined) sendError(response, 400, toError.code, toError.message(to));
    else await this.#accept({ to, from, twiml: twiml ?? "", statusCallback: form.get("StatusCallback") }, response, fault);
  }

  async #accept(request: Omit<ReceivedCall, "sid">, response: ServerResponse, fault: Fault | undefined): Promise<void> {
    const { to, from } = request;
    const call: ReceivedCall = { sid: `CA${randomBytes(16).toString("hex")}`, ...request };
    this.calls.push(call);
    if (await this.#holdBack(response, fault)) return;
    sendJson(response, 201, {
      account_sid: this.accountSid,
      api_version: "2010-04-01",
      direction: "outbound-api",
      from,
      price: null,
      price_unit: "USD",
      sid: call.sid,
      status: "queued",
      to,
      uri: `/2010-04-01/Accounts/${this.accountSid}/Calls/${call.sid}.json`,
    });
  }

  /**
   * Applies a hang or a slow answer to a request already accepted (the message or call exists): resolves
   * true when the answer never comes.
   */
  async #holdBack(response: ServerResponse, fault: Fault | undefined): Promise<boolean> {
    if (fault?.kind === "hang") {
      // Twilio took it but the answer never comes back: the SMS may well be delivered, the call placed.
      this.#hanging.add(response);
      response.once("close", () => this.#hanging.delete(response));
      return true;
    }
    if (fault?.kind === "slow") await new Promise((resolve) => setTimeout(resolve, fault.ms));
    return false;
  }

  #authenticate(header: string | undefined): string | null {
    if (header === undefined || !header.startsWith("Basic ")) return null;
    const [user, password] = Buffer.from(header.slice(6), "base64").toString("utf8").split(":");
    if (user === this.accountSid && password === this.authToken) return user;
    if (user === this.apiKey && password === this.apiSecret) return user;
    return null;
  }
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(body));
}

/** Twilio's error body: {code, message, more_info, status}. */
function sendError(response: ServerResponse, status: number, code: number | null, message: string): void {
  sendJson(response, status, {
    code,
    message,
    more_info: code === null ? null : `https://www.twilio.com/docs/errors/${code}`,
    status,
  });
}
