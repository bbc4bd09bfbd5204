import type { AddressInfo } from "node:net";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { noteCode } from "./logs.js";

/** Where in the SMTP dialogue a fault strikes: the greeting, MAIL FROM, RCPT TO, or the answer to DATA. */
export type SmtpStage = "connect" | "mail" | "rcpt" | "data";

type Fault = { kind: "reply"; stage: SmtpStage; responseCode: number; message: string } | { kind: "hang" };

/** A real SMTP server for the tests (the smtp-server package): keeps every message it accepts, parsed. */
export class TestSmtpServer {
  readonly received: ParsedMail[] = [];
  /** Faults for the next connections, one each, in order (nodemailer opens one connection per message). */
  readonly #faults: Fault[] = [];
  /** The fault of each open connection, by session id. */
  readonly #sessionFaults = new Map<string, Fault>();
  /** Answers to DATA held back, by session id, while their client is still connected. */
  readonly #held = new Set<string>();
  #server: SMTPServer | null = null;
  #port = 0;

  /**
   * The next message's connection gets this reply at `stage` instead of going on: 421 at the greeting is
   * a server that is not taking mail, 550 at RCPT TO a mailbox that does not exist, 554 after DATA a
   * message refused for its content, 535… The `message` is the reply's text.
   */
  failNext(stage: SmtpStage, responseCode: number, message = "Refused"): void {
    this.#faults.push({ kind: "reply", stage, responseCode, message });
  }

  /** The next message is received whole, but the answer to its DATA never comes (until the client gives up). */
  hangNext(): void {
    this.#faults.push({ kind: "hang" });
  }

  /** Messages received whose answer is held back while the client still waits: a send that gave up closes its connection. */
  get held(): number {
    return this.#held.size;
  }

  async start(): Promise<this> {
    const refusal = (sessionId: string, stage: SmtpStage): Error | null => {
      const fault = this.#sessionFaults.get(sessionId);
      if (fault?.kind !== "reply" || fault.stage !== stage) return null;
      return Object.assign(new Error(fault.message), { responseCode: fault.responseCode });
    };
    this.#server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      // No reverse DNS lookup of the client on each connection: the tests' mail comes from 127.0.0.1.
      disableReverseLookup: true,
      // stop() does not wait the default 30 s for a connection a client left hanging.
      closeTimeout: 200,
      onConnect: (session, callback) => {
        const fault = this.#faults.shift();
        if (fault !== undefined) this.#sessionFaults.set(session.id, fault);
        callback(refusal(session.id, "connect"));
      },
      onMailFrom: (_address, session, callback) => callback(refusal(session.id, "mail")),
      onRcptTo: (_address, session, callback) => callback(refusal(session.id, "rcpt")),
      onData: (stream, session, callback) => {
        simpleParser(stream)
          .then((mail) => {
            for (const code of (mail.text ?? "").match(/\d{4,10}/g) ?? []) noteCode(code);
            const refused = refusal(session.id, "data");
            if (refused !== null) return callback(refused);
            this.received.push(mail);
            if (this.#sessionFaults.get(session.id)?.kind === "hang") {
              // The message is here, and may well be delivered, but the client never hears so.
              this.#held.add(session.id);
              return;
            }
            callback();
          })
          .catch(callback);
      },
      onClose: (session) => {
        this.#sessionFaults.delete(session.id);
        this.#held.delete(session.id);
      },
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
    this.#port = ((this.#server as unknown as { server: { address(): AddressInfo } }).server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.#port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server === null ? resolve() : this.#server.close(() => resolve())));
  }
}
