#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { ruleWords } from "../field-errors.js";
import { PURPOSES } from "../otp/types.js";
import { errorLine } from "./error-line.js";
import type { ReportOptions } from "./ops.js";

// Each command loads its own modules when it runs: `vericode report` never loads the HTTP server.

function purpose(value: string): string {
  // The words the API's validation_error says of a purpose (src/field-errors.ts).
  if (!(PURPOSES as readonly string[]).includes(value)) throw new InvalidArgumentError(`use ${ruleWords({ enum: PURPOSES })}.`);
  return value;
}

function workers(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError("the number of workers is a whole number from 1 to 256.");
  return n;
}

function days(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 3650) throw new InvalidArgumentError("days is a whole number from 1 to 3650.");
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("a port is a whole number from 0 to 65535.");
  return n;
}

/** The package's version, read from its package.json (two levels up from dist/cli/ and from src/cli/). */
const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

const program = new Command()
  .name("vericode")
  .description("Self-hosted verification codes: send and verify one-time codes by SMS.")
  .version(version, "-V, --version", "print the version")
  .showHelpAfterError("(run with --help for usage)")
  .configureOutput({ outputError: (text, write) => write(text) });

program
  .command("serve")
  .description("run the HTTP API (migrations run first)")
  .option("-p, --port <port>", "port to listen on (default: PORT or 3000)", port)
  .option("--host <host>", "address to bind (default: HOST or 127.0.0.1)")
  .option("-w, --workers <n>", "processes sharing the port, one per core (node:cluster); migrations run once first", workers)
  .action(async (options: { port?: number; host?: string; workers?: number }) => {
    const worker = process.env.VERICODE_WORKER === "1";
    // V8 reads its heap limits when a process starts (v8-flags.ts): the primary of --workers gives them
    // to its workers; a single process starts the service again in a child that has them.
    const { missingV8Flags, serveWithV8Flags } = await import("./v8-flags.js");
    const v8Flags = worker ? [] : missingV8Flags(process.execArgv, process.env.NODE_OPTIONS);
    // A worker of --workers serves; the primary forks the workers with the same arguments.
    if (options.workers !== undefined && options.workers > 1 && !worker) {
      return (await import("./workers.js")).runPrimary(options.workers, process.argv.slice(2), v8Flags);
    }
    if (v8Flags.length > 0) return serveWithV8Flags(v8Flags);
    return (await import("./serve.js")).runServe({ ...options, worker });
  });

program
  .command("migrate")
  .description("apply pending database migrations and print what ran")
  .action(async () => (await import("./migrate.js")).runMigrate());

program
  .command("try")
  .description("send a code to a number, ask for it at the prompt and verify it (a manual end-to-end test)")
  .argument("<phone>", "the number, E.164 (+50688887777), or an address with --channel email")
  .option("--purpose <purpose>", `one of ${PURPOSES.join(", ")}`, purpose, "login")
  .option("--channel <channel>", "sms, whatsapp, voice or email", "sms")
  .option("--locale <tag>", "the message's language (es, en, pt-BR…)")
  .option("--user <id>", "the user the code is bound to", "cli-try")
  .action(async (phone: string, options: { purpose: string; user: string; channel: string; locale?: string }) =>
    (await import("./try.js")).runTry(phone, options),
  );

program
  .command("budget")
  .description("show the SMS budget of the current period: spent, reserved and left")
  .option("--json", "print one JSON object")
  .action(async (options: { json?: boolean }) => (await import("./budget.js")).runBudget(options));

program
  .command("send")
  .description("send a code to a phone number")
  .argument("<phone>", "the number, E.164 (+50688887777)")
  .requiredOption("--purpose <purpose>", `one of ${PURPOSES.join(", ")}`, purpose)
  .option("--user <id>", "the user the code is bound to", "cli")
  .option("--locale <tag>", "the message's language (es, en, pt-BR…); default: the number's country, then DEFAULT_LOCALE")
  .action(async (phone: string, options: { purpose: string; user: string; locale?: string }) =>
    (await import("./otp.js")).runSend(phone, options),
  );

program
  .command("verify")
  .description("verify a code received on a phone number")
  .argument("<phone>", "the number, E.164 (+50688887777)")
  .argument("<code>", "the digits received")
  .requiredOption("--purpose <purpose>", `one of ${PURPOSES.join(", ")}`, purpose)
  .option("--user <id>", "the user the code is bound to", "cli")
  .action(async (phone: string, code: string, options: { purpose: string; user: string }) =>
    (await import("./otp.js")).runVerify(phone, code, options),
  );

program
  .command("report")
  .description("codes sent, delivered, failed, verified, expired and locked, conversion, time to verify, refusals and spend")
  .option("--since <duration>", "how far back: 90m, 24h, 7d, 2w, or an ISO 8601 date as --from (default 7d)")
  .option("--from <time>", "start, ISO 8601 (instead of --since)")
  .option("--to <time>", "end, ISO 8601 (default now)")
  .option("--group-by <unit>", "day or hour", "day")
  .option("--purpose <purpose>", `only one of ${PURPOSES.join(", ")}`)
  .option("--service <sid>", "only one Twilio Verify v2 service's verifications (VA…)")
  .option("--channel <channel>", "only sms, whatsapp, voice or email")
  .option("--country <code>", "only one country (ISO 3166 alpha-2: CR)")
  .option("--format <format>", "table, json or csv (the time series)", "table")
  .action(async (options: ReportOptions) => (await import("./ops.js")).runReport(options));

const user = program.command("user").description("manage users");
user
  .command("promote")
  .description("give a user the admin role (the analytics API and the dashboard)")
  .argument("<login>", "the username or email")
  .option("--role <role>", "the role to give", "admin")
  .action(async (login: string, options: { role: string }) => (await import("./user.js")).runPromote(login, options));

program
  .command("purge")
  .description("delete codes, refusals and challenges older than RETENTION_DAYS (the hourly job of serve does the same)")
  .option("--days <n>", "keep this many days instead of RETENTION_DAYS", days)
  .option("--json", "print one JSON object")
  .action(async (options: { days?: number; json?: boolean }) => (await import("./ops.js")).runPurge(options));

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(`vericode: ${errorLine(error)}\n`);
  process.exitCode = 1;
}
