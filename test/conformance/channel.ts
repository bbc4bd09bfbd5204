import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { threadId } from "node:worker_threads";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it, type MockInstance, vi } from "vitest";
import type { Channel, DeliveryOutcome, OutgoingMessage } from "../../src/channels/channel.js";
import { type Logger, loggerOptions } from "../../src/logger.js";
import { LOG_DIR } from "../support/logs.js";
import { testMessage } from "../support/messages.js";
import { conformance } from "./harness.js";

type Failure = Extract<DeliveryOutcome, { ok: false }>;

/** A case a channel cannot be put in, and why: the suite lists it as not applicable instead of passing over it. */
export interface NotApplicable {
  readonly notApplicable: string;
}

export const notApplicable = (why: string): NotApplicable => ({ notApplicable: why });

/** What a channel's test server can be made to do, or why the case does not apply to that channel. */
export type Capability<T> = T | NotApplicable;

const applies = <T>(capability: Capability<T>): capability is T =>
  typeof capability !== "object" || capability === null || !("notApplicable" in capability);

/** What a case sends: the suite's channel unless it names another (one whose provider is down), and message fields. */
export interface Arranged {
  channel?: Channel;
  message?: Partial<OutgoingMessage>;
}

/** An answer the provider can be made to give, and the outcome the channel's mapping makes of it. */
export interface ProviderAnswer<Kind extends Failure["kind"] = Failure["kind"]> {
  /** The provider's words, for the test's title: "21211 (not a valid number)", "550 at RCPT TO". */
  what: string;
  /** Sets the test server up for it (a fault for the next request, a magic number) and says what to send. */
  arrange(): Arranged | Promise<Arranged>;
  expected: { kind: Kind; providerCode: string | null };
}

/** A channel's provider, as its test server plays it. */
export interface ChannelProvider {
  /** A new recipient the provider takes: an E.164 number, or an address for email. */
  recipient(): string;
  /** How the provider answers a message it takes: its id for the message (null when it gives none) and the status. */
  accepted: { providerMessageId: RegExp | null; deliveryStatus: string };
  /** Messages the provider has taken so far, answered or not; `logged` is what the channel logged (the console's "provider"). */
  taken(logged: readonly string[]): number;
  /** Requests the provider holds unanswered while their client still waits. */
  held(): number;
  /** Refusals by the provider's own codes (a bad number, an opted-out recipient, a refused mailbox, throttling…). */
  refused: Capability<ProviderAnswer[]>;
  /** The provider cannot be reached or says it is out of service: always `failed`, with the code the channel maps. */
  unavailable: Capability<ProviderAnswer<"failed">[]>;
  /** The provider takes the next message and never answers. */
  hangNext: Capability<() => void>;
  /** The channel with a transport timeout of its own of `ms`, for a channel that has one besides the deadline. */
  withTimeout: Capability<(ms: number) => Channel>;
}

/** Deadlines are loose upper bounds here: a send may end this much after its deadline on a busy machine. */
const MARGIN_MS = 1500;
/** The deadline of a case that is not about time: long enough never to matter. */
const ROOMY_MS = 8000;

/** Where the channel under test logs: kept in memory for the checks, and in the run's logs for the scan after it. */
class ChannelLog {
  readonly lines: string[] = [];
  readonly logger: Logger;

  constructor() {
    mkdirSync(LOG_DIR, { recursive: true });
    const file = pino.destination({ dest: join(LOG_DIR, `channels-${process.pid}-${threadId}.ndjson`), sync: true });
    const memory = { write: (line: string) => void this.lines.push(line) };
    this.logger = pino(
      loggerOptions("debug"),
      pino.multistream([
        { level: "debug", stream: memory },
        { level: "debug", stream: file },
      ]),
    );
  }
}

/** Whatever reaches stdout, stderr or the console while the suite runs (an SDK's debug output, a stray print). */
function captureOutput(): { text(): string[]; restore(): void } {
  const spies: MockInstance[] = [
    vi.spyOn(process.stdout, "write"),
    vi.spyOn(process.stderr, "write"),
    ...(["log", "info", "warn", "error", "debug", "trace"] as const).map((method) => vi.spyOn(console, method)),
  ];
  const show = (value: unknown) =>
    typeof value === "string" ? value : value instanceof Uint8Array ? Buffer.from(value).toString() : String(value);
  return {
    text: () => spies.flatMap((spy) => spy.mock.calls.map((call) => call.map(show).join(" "))),
    restore: () => {
      for (const spy of spies) spy.mockRestore();
    },
  };
}

/** An address nothing listens on: a port bound and released at once, so a connection there is refused. */
export async function deadAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return `127.0.0.1:${address.port}`;
}

async function until(condition: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await sleep(20);
}

const close = (channel: Channel) => (channel as Channel & { close?: () => void }).close?.();

/** A full phone number and a run of digits that may be a code, as the scan after the run reads them (test/support/check-logs.mjs). */
const FULL_NUMBER = /\+\d{7,15}(?!\d)/;
const DIGIT_RUN = /(?<![\w.])\d{4,10}(?![\w.])/g;

/**
 * The Channel contract, run against every channel and its provider's test server: a message taken, refusals
 * by the provider's codes, a provider down, one that never answers, the message's deadline, and logs that
 * hold no code and no full number. `make` builds the channel once for the suite, logging to `log`; a case
 * that cannot happen to a channel is declared so in `provider` and listed as skipped, with the reason.
 */
export function testChannel(
  make: (log: Logger) => Promise<{ channel: Channel; cleanup: () => Promise<void> }>,
  provider: ChannelProvider,
): void {
  const log = new ChannelLog();
  /** Every message the suite sent, for the secrets the logs must not hold. */
  const sent: OutgoingMessage[] = [];
  let output: ReturnType<typeof captureOutput> | undefined;
  beforeAll(() => {
    output = captureOutput();
  });
  afterAll(() => output?.restore());

  const { test, subject: channel } = conformance(async () => {
    const made = await make(log.logger);
    return { subject: made.channel, cleanup: made.cleanup };
  });

  let serial = 0;
  /** Sends a message with a code and a recipient of its own, due `deadlineInMs` from now (negative: already due). */
  async function send(
    arranged: Arranged = {},
    deadlineInMs = ROOMY_MS,
  ): Promise<{ outcome: DeliveryOutcome; elapsed: number; message: OutgoingMessage }> {
    const code = String(100_000 + Math.floor(Math.random() * 900_000));
    const message = testMessage({
      to: provider.recipient(),
      code,
      body: `${code} es tu código de acceso. Vence en 10 min. No lo compartas.`,
      reference: `otp_conformance_${++serial}`,
      deadline: Date.now() + deadlineInMs,
      ...arranged.message,
    });
    sent.push(message);
    const started = Date.now();
    const outcome = await (arranged.channel ?? channel).send(message);
    return { outcome, elapsed: Date.now() - started, message };
  }

  /** Registers a case, or lists it as not applicable to this channel with the reason. */
  function when<T>(capability: Capability<T>, title: string, body: (value: T) => void): void {
    if (applies(capability)) body(capability);
    else it.skip(`${title} — not applicable: ${capability.notApplicable}`);
  }

  /** A refusal or an outage: the outcome the mapping says, at once (not at the deadline), and nothing taken. */
  async function provoke(answer: ProviderAnswer): Promise<void> {
    const arranged = await answer.arrange();
    const before = provider.taken(log.lines);
    try {
      const { outcome, elapsed } = await send(arranged);
      expect(outcome).toEqual({ ok: false, ...answer.expected, message: expect.any(String) });
      expect(elapsed).toBeLessThan(ROOMY_MS);
      expect(provider.taken(log.lines)).toBe(before);
    } finally {
      if (arranged.channel !== undefined) close(arranged.channel);
    }
  }

  describe("accepted", () => {
    test("resolves ok with the provider's message id and delivery status, before the deadline, and the provider has it", async () => {
      const before = provider.taken(log.lines);
      const { outcome, elapsed } = await send();
      expect(outcome).toMatchObject({
        ok: true,
        providerMessageId: provider.accepted.providerMessageId === null ? null : expect.stringMatching(provider.accepted.providerMessageId),
        deliveryStatus: provider.accepted.deliveryStatus,
      });
      // A price said at once is whole millionths of a dollar; null or absent when the provider has not said.
      const price = outcome.ok ? outcome.priceMicros : undefined;
      if (price !== undefined && price !== null) expect(Number.isSafeInteger(price) && price >= 0).toBe(true);
      expect(elapsed).toBeLessThan(ROOMY_MS);
      expect(provider.taken(log.lines)).toBe(before + 1);
    });

    test("each message gets an id of its own from the provider (or none from any)", async () => {
      const first = (await send()).outcome;
      const second = (await send()).outcome;
      const ids = [first, second].map((outcome) => (outcome.ok ? outcome.providerMessageId : "not sent"));
      if (provider.accepted.providerMessageId === null) expect(ids).toEqual([null, null]);
      else expect(new Set(ids).size).toBe(2);
    });
  });

  describe("refused", () => {
    when(provider.refused, "refused with the provider's code", (answers) => {
      for (const answer of answers) {
        const { kind, providerCode } = answer.expected;
        test(`refused: ${answer.what} → ${kind} (${providerCode ?? "no code"})`, () => provoke(answer));
      }
    });
  });

  describe("unavailable", () => {
    when(provider.unavailable, "unavailable: the provider down", (answers) => {
      for (const answer of answers) {
        test(`unavailable: ${answer.what} → failed (${answer.expected.providerCode ?? "no code"})`, () => provoke(answer));
      }
    });
  });

  describe("timed out", () => {
    when(provider.hangNext, "timed out: the provider takes the message and never answers", (hangNext) => {
      test("the provider takes the message and never answers: timeout (the message may be delivered)", async () => {
        const before = provider.taken(log.lines);
        hangNext();
        const { outcome } = await send({}, 300);
        expect(outcome).toMatchObject({ ok: false, kind: "timeout", message: expect.any(String) });
        expect(provider.taken(log.lines)).toBe(before + 1);
      });

      test("a deadline already passed: timeout at once, and nothing reaches the provider", async () => {
        const before = provider.taken(log.lines);
        const { outcome, elapsed } = await send({}, -1);
        expect(outcome).toMatchObject({ ok: false, kind: "timeout" });
        expect(elapsed).toBeLessThan(MARGIN_MS);
        expect(provider.taken(log.lines)).toBe(before);
      });

      when(provider.withTimeout, "timed out by the channel's own transport timeout", (withTimeout) => {
        test("its own transport timeout, shorter than the deadline, ends in a timeout too (not a failure)", async () => {
          const short = withTimeout(300);
          try {
            hangNext();
            const { outcome, elapsed } = await send({ channel: short }, ROOMY_MS);
            expect(outcome).toMatchObject({ ok: false, kind: "timeout" });
            expect(elapsed).toBeLessThan(ROOMY_MS);
          } finally {
            close(short);
          }
        });
      });
    });
  });

  describe("the deadline", () => {
    if (applies(provider.hangNext)) {
      const hangNext = provider.hangNext;
      for (const deadlineMs of [300, 1000]) {
        test(`a provider that never answers is given up by the deadline (${deadlineMs} ms), and no request of it is left open`, async () => {
          hangNext();
          const { outcome, elapsed } = await send({}, deadlineMs);
          expect(outcome).toMatchObject({ ok: false, kind: "timeout" });
          expect(elapsed).toBeLessThan(deadlineMs + MARGIN_MS);
          await until(() => provider.held() === 0, MARGIN_MS);
          expect(provider.held()).toBe(0);
        });
      }
    } else {
      test(`a send is over before its deadline (${provider.hangNext.notApplicable})`, async () => {
        const { outcome, elapsed } = await send({}, 400);
        expect(outcome.ok).toBe(true);
        expect(elapsed).toBeLessThan(400 + MARGIN_MS);
      });
    }
  });

  describe("logs", () => {
    test("nothing secret logged: no code and no full number or address in any line the channel writes, whatever the outcome", async () => {
      // Every kind of send once more, so that this case stands alone; the lines of the cases before count too.
      const outcomes: DeliveryOutcome[] = [(await send()).outcome];
      for (const answers of [provider.refused, provider.unavailable]) {
        if (!applies(answers)) continue;
        for (const answer of answers) {
          const arranged = await answer.arrange();
          outcomes.push((await send(arranged)).outcome);
          if (arranged.channel !== undefined) close(arranged.channel);
        }
      }
      if (applies(provider.hangNext)) {
        provider.hangNext();
        outcomes.push((await send({}, 300)).outcome);
      }
      const logged = log.lines.map((line) => line.trimEnd());
      // The console channel's message line is the development "phone": the one deliberate exception, which the
      // scan after the run recognizes by its channel field and from whose text it learns the codes.
      const deliberate = logged.filter((line) => (JSON.parse(line) as { channel?: unknown }).channel === "console");
      for (const line of deliberate) expect(sent.some((message) => line.includes(`"text":${JSON.stringify(message.body)}`))).toBe(true);
      const lines = [...logged.filter((line) => !deliberate.includes(line)), ...(output?.text() ?? [])];
      // A code counts as a run of digits of its own (a timestamp may hold any six digits by chance); a recipient anywhere.
      const codes = new Set(sent.map((message) => message.code));
      for (const line of lines) {
        expect((line.match(DIGIT_RUN) ?? []).filter((run) => codes.has(run))).toEqual([]);
        expect(sent.map((message) => message.to).filter((to) => line.includes(to))).toEqual([]);
        expect(line).not.toMatch(FULL_NUMBER);
      }
      // An outcome is stored and answered to callers: it never carries the code.
      for (const outcome of outcomes) {
        expect(sent.filter((message) => JSON.stringify(outcome).includes(message.code))).toEqual([]);
      }
    });
  });
}
