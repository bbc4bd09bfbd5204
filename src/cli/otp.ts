import { loadConfig } from "../config.js";
import { VericodeError } from "../errors.js";
import { createLogger } from "../logger.js";
import { normalisePhone } from "../phone.js";
import { createVericode, type Vericode } from "../vericode.js";
import { checkCode, checkLocale } from "./checks.js";

export interface CommandServiceOptions {
  /** Run pending migrations first. @default true */
  migrate?: boolean;
  /**
   * Print the configuration's warnings. Only the commands that make or check codes ask: today's one
   * warning, development secrets, says which keys seal the codes, and a code sealed under them verifies
   * nowhere else; the other commands use no secret, so it would only be noise there.
   * @default false
   */
  warnings?: boolean;
}

/**
 * The service for one CLI command: logs (and the console provider's SMS) go to stderr, results to stdout.
 * A warning is for the person at the terminal: a plain line on stderr, once, rather than a log line.
 */
export async function commandService(options: CommandServiceOptions = {}): Promise<Vericode> {
  const config = loadConfig();
  if (options.warnings === true) for (const warning of config.warnings) process.stderr.write(`vericode: warning: ${warning}\n`);
  return createVericode({
    config: { ...config, warnings: [] },
    logger: createLogger(config.logLevel, 2),
    ...(options.migrate === undefined ? {} : { migrate: options.migrate }),
  });
}

/** How a number is shown back: the E.164 form the service used (8888 7005 with DEFAULT_COUNTRY=CR → +50688887005). */
export function shownPhone(vericode: Vericode, phone: string): string {
  return normalisePhone(phone, vericode.config.defaultCountry) ?? phone;
}

export async function runSend(phone: string, options: { purpose: string; user: string; locale?: string }): Promise<void> {
  const invalid = checkLocale(options.locale);
  if (invalid !== null) throw invalid;
  const vericode = await commandService({ warnings: true });
  try {
    const result = await vericode.otp.sendOtp(phone, options.user, options.purpose, { locale: options.locale ?? null });
    if (!result.ok) {
      throw new VericodeError(result.code, result.message);
    }
    process.stdout.write(`Code sent to ${shownPhone(vericode, phone)} (${result.id}); it expires at ${result.expiresAt.toISOString()}.\n`);
  } finally {
    await vericode.close();
  }
}

export async function runVerify(phone: string, code: string, options: { purpose: string; user: string }): Promise<void> {
  const invalid = checkCode(code);
  if (invalid !== null) throw invalid;
  const vericode = await commandService({ warnings: true });
  try {
    const result = await vericode.otp.verifyOtp(phone, code, options.user, options.purpose);
    if (!result.ok) throw new VericodeError(result.code, result.message);
    process.stdout.write(`Verified: the code for ${shownPhone(vericode, phone)} is correct.\n`);
  } finally {
    await vericode.close();
  }
}
