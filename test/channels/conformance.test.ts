import { describe } from "vitest";
import type { Channel } from "../../src/channels/channel.js";
import { ConsoleChannel } from "../../src/channels/console.js";
import { SmtpEmailChannel } from "../../src/channels/email.js";
import { TwilioSmsChannel, TwilioVoiceChannel, TwilioWhatsAppChannel } from "../../src/channels/twilio-sms.js";
import type { TwilioConfig } from "../../src/config.js";
import { type ChannelProvider, deadAddress, notApplicable, type ProviderAnswer, testChannel } from "../conformance/channel.js";
import { TestSmtpServer } from "../support/smtp-server.js";
import { FakeTwilio } from "../support/twilio-server.js";

let serial = 0;
/** A new Costa Rican mobile number for each message: the log check looks for each one in full. */
const phoneNumber = () => `+5068${String(10_000_000 + ++serial).slice(1)}`;

/** What every Twilio channel shares: the SDK against our Twilio-compatible server. */
function twilioProvider(
  twilio: FakeTwilio,
  build: (config: TwilioConfig) => Channel,
  own: Pick<ChannelProvider, "accepted" | "taken"> & { refused: ProviderAnswer[] },
): ChannelProvider {
  const fault = (status: number, code: number | null, message: string) => () => {
    twilio.failNext(status, { code, message });
    return {};
  };
  return {
    recipient: phoneNumber,
    held: () => twilio.held,
    ...own,
    refused: [
      ...own.refused,
      {
        what: "429 Too Many Requests, for every retry",
        arrange: () => {
          twilio.failNext(429, { count: 4 });
          return {};
        },
        expected: { kind: "throttled", providerCode: "20429" },
      },
      {
        what: "20003 (wrong credentials): the account's fault, not the recipient's",
        arrange: () => ({ channel: build(twilio.config({ password: "wrong" })) }),
        expected: { kind: "failed", providerCode: "20003" },
      },
    ],
    unavailable: [
      {
        what: "connection refused (nothing listens)",
        arrange: async () => ({ channel: build(twilio.config({ apiBaseUrl: `http://${await deadAddress()}` })) }),
        expected: { kind: "failed", providerCode: "ECONNREFUSED" },
      },
      {
        what: "503 with a null code",
        arrange: fault(503, null, "Service Unavailable"),
        expected: { kind: "failed", providerCode: "http_503" },
      },
      { what: "500 with 20500", arrange: fault(500, 20500, "Internal Server Error"), expected: { kind: "failed", providerCode: "20500" } },
    ],
    hangNext: () => twilio.hangNext(),
    withTimeout: notApplicable(
      "each request's timeout is what is left of the message's deadline (TwilioConfig.timeoutMs is the deadline OtpService gives a send)",
    ),
  };
}

/** Twilio's test numbers, answered by our server as Twilio answers them (Messages and Calls alike). */
const TEST_NUMBERS: ProviderAnswer[] = [
  {
    what: "21211 (not a valid number)",
    arrange: () => ({ message: { to: "+15005550001" } }),
    expected: { kind: "invalid_number", providerCode: "21211" },
  },
  {
    what: "21612 (not reachable)",
    arrange: () => ({ message: { to: "+15005550002" } }),
    expected: { kind: "rejected", providerCode: "21612" },
  },
  {
    what: "21408 (region not enabled)",
    arrange: () => ({ message: { to: "+15005550003" } }),
    expected: { kind: "rejected", providerCode: "21408" },
  },
  {
    what: "21610 (opted out)",
    arrange: () => ({ message: { to: "+15005550004" } }),
    expected: { kind: "rejected", providerCode: "21610" },
  },
  {
    what: "21614 (not a mobile number)",
    arrange: () => ({ message: { to: "+15005550009" } }),
    expected: { kind: "rejected", providerCode: "21614" },
  },
];

describe("Channel: Twilio SMS", () => {
  const twilio = new FakeTwilio();
  const build = (config: TwilioConfig) => new TwilioSmsChannel(config);
  testChannel(
    async () => {
      await twilio.start();
      return { channel: build(twilio.config()), cleanup: () => twilio.stop() };
    },
    twilioProvider(twilio, build, {
      accepted: { providerMessageId: /^SM[0-9a-f]{32}$/, deliveryStatus: "queued" },
      taken: () => twilio.messages.length,
      refused: [
        ...TEST_NUMBERS,
        {
          what: "21635 (not SMS-capable)",
          arrange: () => {
            twilio.failNext(400, { code: 21635, message: "'To' number cannot be a landline" });
            return {};
          },
          expected: { kind: "rejected", providerCode: "21635" },
        },
        {
          what: "21212 (an invalid From): the sender's fault, not the recipient's",
          arrange: () => ({ channel: build(twilio.config({ phoneNumber: "+15005550001" })) }),
          expected: { kind: "failed", providerCode: "21212" },
        },
      ],
    }),
  );
});

describe("Channel: Twilio WhatsApp", () => {
  const twilio = new FakeTwilio();
  const build = (config: TwilioConfig) => new TwilioWhatsAppChannel(config);
  // Twilio's test numbers are for SMS and calls: WhatsApp's refusals come as the codes Twilio answers.
  const refusal = (code: number, message: string) => () => {
    twilio.failNext(400, { code, message });
    return {};
  };
  testChannel(
    async () => {
      await twilio.start();
      return { channel: build(twilio.config()), cleanup: () => twilio.stop() };
    },
    twilioProvider(twilio, build, {
      accepted: { providerMessageId: /^SM[0-9a-f]{32}$/, deliveryStatus: "queued" },
      taken: () => twilio.messages.length,
      refused: [
        {
          what: "21211 (not a valid number)",
          arrange: refusal(21211, "Invalid 'To' Phone Number"),
          expected: { kind: "invalid_number", providerCode: "21211" },
        },
        {
          what: "21610 (opted out)",
          arrange: refusal(21610, "Attempt to send to unsubscribed recipient"),
          expected: { kind: "rejected", providerCode: "21610" },
        },
        {
          what: "63016 (outside the allowed window): a failure, which OtpService may fall back from",
          arrange: refusal(63016, "Failed to send freeform message because you are outside the allowed window."),
          expected: { kind: "failed", providerCode: "63016" },
        },
      ],
    }),
  );
});

describe("Channel: Twilio voice", () => {
  const twilio = new FakeTwilio();
  const build = (config: TwilioConfig) => new TwilioVoiceChannel(config);
  testChannel(
    async () => {
      await twilio.start();
      return { channel: build(twilio.config()), cleanup: () => twilio.stop() };
    },
    twilioProvider(twilio, build, {
      accepted: { providerMessageId: /^CA[0-9a-f]{32}$/, deliveryStatus: "queued" },
      taken: () => twilio.calls.length,
      refused: TEST_NUMBERS,
    }),
  );
});

describe("Channel: email over SMTP", () => {
  const smtp = new TestSmtpServer();
  const from = "Parque Marino <no-reply@parquemarino.example>";
  const build = (url: string, timeoutMs?: number) => new SmtpEmailChannel({ url, from }, timeoutMs === undefined ? {} : { timeoutMs });
  const reply = (stage: "connect" | "mail" | "rcpt" | "data", code: number, text: string) => () => {
    smtp.failNext(stage, code, text);
    return {};
  };
  testChannel(
    async () => {
      await smtp.start();
      const channel = build(smtp.url);
      return {
        channel,
        cleanup: async () => {
          channel.close();
          await smtp.stop();
        },
      };
    },
    {
      recipient: () => `ana.${++serial}@example.com`,
      // Nodemailer's Message-ID: SMTP gives no id of its own that a client can rely on.
      accepted: { providerMessageId: /^<[^\s@<>]+@[^\s@<>]+>$/, deliveryStatus: "sent" },
      taken: () => smtp.received.length,
      held: () => smtp.held,
      refused: [
        {
          what: "550 at RCPT TO (no such mailbox)",
          arrange: reply("rcpt", 550, "5.1.1 No such mailbox"),
          expected: { kind: "rejected", providerCode: "550" },
        },
        {
          what: "553 at RCPT TO (address not allowed)",
          arrange: reply("rcpt", 553, "5.1.3 Bad recipient address syntax"),
          expected: { kind: "rejected", providerCode: "553" },
        },
        {
          what: "554 after DATA (message refused)",
          arrange: reply("data", 554, "5.7.1 Message rejected"),
          expected: { kind: "rejected", providerCode: "554" },
        },
        {
          what: "452 at RCPT TO (mailbox full, for now)",
          arrange: reply("rcpt", 452, "4.2.2 Mailbox full"),
          expected: { kind: "failed", providerCode: "452" },
        },
        {
          what: "550 at MAIL FROM (sender not allowed): the sender's fault, not the recipient's",
          arrange: reply("mail", 550, "5.7.1 Sender address rejected"),
          expected: { kind: "failed", providerCode: "550" },
        },
      ],
      unavailable: [
        {
          what: "connection refused (nothing listens)",
          arrange: async () => ({ channel: build(`smtp://${await deadAddress()}`) }),
          expected: { kind: "failed", providerCode: "ESOCKET" },
        },
        {
          what: "421 at the greeting (not taking mail now)",
          arrange: reply("connect", 421, "4.3.2 Service not available"),
          expected: { kind: "failed", providerCode: "421" },
        },
        {
          what: "554 at the greeting (no SMTP service here)",
          arrange: reply("connect", 554, "5.3.2 No SMTP service here"),
          expected: { kind: "failed", providerCode: "554" },
        },
      ],
      hangNext: () => smtp.hangNext(),
      withTimeout: (ms) => build(smtp.url, ms),
    },
  );
});

describe("Channel: console", () => {
  testChannel(async (log) => ({ channel: new ConsoleChannel(log, "sms"), cleanup: async () => {} }), {
    recipient: phoneNumber,
    accepted: { providerMessageId: null, deliveryStatus: "logged" },
    // The development "phone" is the log: a message taken is a line of the console channel.
    taken: (logged) => logged.filter((line) => line.includes('"channel":"console"')).length,
    held: () => 0,
    refused: notApplicable("there is no provider to refuse: every message goes to the log"),
    unavailable: notApplicable("there is nothing to reach: the log is written in-process"),
    hangNext: notApplicable("there is no I/O to wait on: a send is over once its line is logged"),
    withTimeout: notApplicable("there is no transport, so no timeout of its own"),
  });
});
