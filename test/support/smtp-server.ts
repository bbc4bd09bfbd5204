import type { AddressInfo } from "node:net";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { noteCode } from "./logs.js";

/** A real SMTP server for the tests (the smtp-server package): keeps every message it accepts, parsed. */
export class TestSmtpServer {
  readonly received: ParsedMail[] = [];
  /** Recipients refused with a permanent 550, as a mailbox that does not exist. */
  readonly refuse = new Set<string>();
  #server: SMTPServer | null = null;
  #port = 0;

  async start(): Promise<this> {
    this.#server = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onRcptTo: (address, _session, callback) => {
        if (this.refuse.has(address.address.toLowerCase())) {
          const error = Object.assign(new Error("5.1.1 No such mailbox"), { responseCode: 550 });
          callback(error);
          return;
        }
        callback();
      },
      onData: (stream, _session, callback) => {
        simpleParser(stream)
          .then((mail) => {
            this.received.push(mail);
            for (const code of (mail.text ?? "").match(/\d{4,10}/g) ?? []) noteCode(code);
            callback();
          })
          .catch(callback);
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
