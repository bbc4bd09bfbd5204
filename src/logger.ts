import pino from "pino";

/** vericode logs through pino (Fastify's own logger), so one logger serves the core and HTTP. */
export type Logger = pino.Logger;

const CENSOR = "[redacted]";
/**
 * Fields never written to a log, at the top of a line: codes, passwords, tokens. `code` and `otp_code` may
 * hold a one-time code, so they are hidden whatever they hold: log an error code as `errorCode`, never
 * `code` (`{ errorCode: "rate_limited" }` is written as given; `{ code: "rate_limited" }` as "[redacted]").
 */
const SECRET_FIELDS = new Set(["otp_code", "code", "password", "new_password", "access", "refresh", "token"]);
/** The same one level down (`{ body: { otp_code } }`), except `code`, which nested names a problem's code. */
const NESTED_SECRET_FIELDS = new Set(["otp_code", "password", "new_password", "access", "refresh", "token"]);
/** Request headers never written: `req.headers.…`. */
const SECRET_HEADERS = ["authorization", "cookie", "x-twilio-signature"];

/**
 * What a log line may hold, scrubbed: codes, passwords, tokens and secrets at the top of the line and one
 * level down, and the request's secret headers, become "[redacted]". The console channel's message text is
 * the one deliberate exception, and it is refused in production. Copies only what it changes: a line with
 * nothing to hide is written as it was given.
 *
 * pino's own `redact` option would do this with paths, but a path starting with a wildcard runs its
 * redaction over every field of every line (measured: 26 KB of garbage and a tenth of a send's CPU).
 */
export function redactSecrets(line: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | null = null;
  for (const key in line) {
    if (!Object.hasOwn(line, key)) continue;
    const value = line[key];
    if (value === undefined) continue;
    let scrubbed = value;
    if (SECRET_FIELDS.has(key)) scrubbed = CENSOR;
    else if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      scrubbed = scrubNested(value as Record<string, unknown>, key === "req");
    }
    if (scrubbed !== value) {
      copy ??= { ...line };
      copy[key] = scrubbed;
    }
  }
  return copy ?? line;
}

function scrubNested(value: Record<string, unknown>, request: boolean): Record<string, unknown> {
  let copy: Record<string, unknown> | null = null;
  for (const key of NESTED_SECRET_FIELDS) {
    if (Object.hasOwn(value, key) && value[key] !== undefined) {
      copy ??= shallowCopy(value);
      copy[key] = CENSOR;
    }
  }
  const headers = request ? value.headers : undefined;
  if (typeof headers === "object" && headers !== null) {
    const present = SECRET_HEADERS.filter((name) => Object.hasOwn(headers, name));
    if (present.length > 0) {
      const scrubbed: Record<string, unknown> = { ...(headers as Record<string, unknown>) };
      for (const name of present) scrubbed[name] = CENSOR;
      copy ??= shallowCopy(value);
      copy.headers = scrubbed;
    }
  }
  return copy ?? value;
}

/** A copy an error serializer still reads as the error it was (its class, message and stack). */
function shallowCopy(value: Record<string, unknown>): Record<string, unknown> {
  if (!(value instanceof Error)) return { ...value };
  return Object.assign(Object.create(Object.getPrototypeOf(value) as object) as Record<string, unknown>, value, {
    message: value.message,
    stack: value.stack,
  });
}

/**
 * The options of every vericode logger: the level, and redactSecrets on every line. pino's `redact`, with
 * exact paths only (no cost on lines without those fields), covers what a child logger is bound to, which
 * pino does not pass through the line formatter.
 */
export function loggerOptions(level: string): pino.LoggerOptions {
  return {
    level,
    formatters: { log: redactSecrets },
    redact: { paths: [...SECRET_FIELDS, ...SECRET_HEADERS.map((name) => `req.headers[${JSON.stringify(name)}]`)], censor: CENSOR },
  };
}

/**
 * A pino logger with redaction; `fd` 2 sends the lines to stderr, synchronously (CLI commands keep stdout
 * for results); the service's lines go to stdout a turn of the event loop at a time.
 */
export function createLogger(level: string, fd: 1 | 2 = 1): Logger {
  if (fd === 2) return pino(loggerOptions(level), pino.destination({ fd, sync: true }));
  return pino(loggerOptions(level), new TurnWriter(pino.destination({ fd, sync: false }), pino.destination({ fd, sync: true })));
}

/** What a TurnWriter writes to: a sonic-boom (`pino.destination`), which can be flushed at once. */
type Destination = pino.DestinationStream & { flushSync(): void; flush(callback?: (error?: Error) => void): void };

/**
 * The writers whose lines the one exit hook writes out. Held weakly: a logger dropped without ceremony
 * (pino loggers are never closed) is collected with its destination, and its entry goes with it. A writer
 * with lines waiting is still held by its scheduled hand-over, so nothing given is lost.
 */
const liveWriters = new Set<WeakRef<TurnWriter>>();
const forgetWriter = new FinalizationRegistry<WeakRef<TurnWriter>>((ref) => liveWriters.delete(ref));
let exitHooked = false;

/**
 * One 'exit' listener for the process, however many loggers it makes (one each went past the 10 allowed).
 * pino adds one more of its own, shared by its destinations: it flushes them, not the lines waiting here.
 */
function flushAtExit(writer: TurnWriter): void {
  const ref = new WeakRef(writer);
  liveWriters.add(ref);
  forgetWriter.register(writer, ref);
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => {
    for (const live of liveWriters) live.deref()?.flushSync();
  });
}

/**
 * Hands the lines written during one turn of the event loop to the destination as one string. sonic-boom
 * appends each line to the text waiting for the write in flight and measures that whole text again for
 * every line (up to 16 KB each time: measured 14 KB of garbage per send); given a turn's lines at once it
 * does so once per turn. Lines still waiting are written before the process exits (see flushAtExit).
 */
export class TurnWriter {
  readonly #destination: Destination;
  /**
   * The same file descriptor, written synchronously: where the exit hook writes the lines still waiting.
   * Handed to an idle sonic-boom they would start an asynchronous write, which flushSync leaves to finish;
   * on a non-blocking pipe (stdout under Node 24's child_process) a write can take only part of the text,
   * and the rest waits for a callback an exiting process never runs.
   */
  readonly #atExit: pino.DestinationStream;
  #lines: string[] = [];
  #scheduled = false;

  constructor(destination: Destination, atExit: pino.DestinationStream) {
    this.#destination = destination;
    this.#atExit = atExit;
    flushAtExit(this);
  }

  write(line: string): boolean {
    this.#lines.push(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#handOver);
    }
    return true;
  }

  readonly #handOver = (): void => {
    this.#scheduled = false;
    if (this.#lines.length === 0) return;
    this.#destination.write(this.#take());
  };

  /** The lines waiting, as one string, taken. */
  #take(): string {
    const text = this.#lines.length === 1 ? (this.#lines[0] as string) : this.#lines.join("");
    this.#lines = [];
    return text;
  }

  /** pino's `logger.flush()`: everything given so far, written. */
  flush(callback?: (error?: Error) => void): void {
    this.#handOver();
    this.#destination.flush(callback);
  }

  /** Everything given so far, written before it returns: the exit hook's way out (pino's too, after a fatal line). */
  flushSync(): void {
    this.#destination.flushSync();
    if (this.#lines.length > 0) this.#atExit.write(this.#take());
  }
}
