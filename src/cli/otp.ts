import { loadConfig } from "../config.js";
import { VericodeError } from "../errors.js";
import { createLogger } from "../logger.js";
import { createVericode, type Vericode } from "../vericode.js";

/** The service for one CLI command: logs (and the console provider's SMS) go to stderr, results to stdout. */
export async function commandService(options: { migrate?: boolean } = {}): Promise<Vericode> {
  const config = loadConfig();
  return createVericode({ config, logger: createLogger(config.logLevel, 2), ...options });
}

export async function runSend(phone: string, options: { purpose: string; user: string; locale?: string }): Promise<void> {
  const vericode = await commandService();
  try {
    const result = await vericode.otp.sendOtp(phone, options.user, options.purpose, { locale: options.locale ?? null });
    if (!result.ok) {
      throw new VericodeError(result.code, result.message);
    }
    process.stdout.write(`Code sent to ${phone} (${result.id}); it expires at ${result.expiresAt.toISOString()}.\n`);
  } finally {
    await vericode.close();
  }
}

export async function runVerify(phone: string, code: string, options: { purpose: string; user: string }): Promise<void> {
  const vericode = await commandService();
  try {
    const result = await vericode.otp.verifyOtp(phone, code, options.user, options.purpose);
    if (!result.ok) throw new VericodeError(result.code, result.message);
    process.stdout.write(`Verified: the code for ${phone} is correct.\n`);
  } finally {
    await vericode.close();
  }
}
