import { createInterface } from "node:readline/promises";
import type { ChannelName } from "../channels/channel.js";
import { normaliseEmail } from "../email.js";
import { VericodeError } from "../errors.js";
import { checkCode, checkSend } from "./checks.js";
import { problemText } from "./error-line.js";
import { commandService, shownPhone } from "./otp.js";

/**
 * `vericode try <phone>`: the seed's manual test script as one command. Sends a code, asks for it at the
 * prompt, verifies it; a wrong code may be typed again while tries remain, and what is not a code at all
 * (`abc`) is refused before it is tried, as the API refuses it, so it costs no try. Prompts go to stderr,
 * so stdout keeps only the outcome.
 */
export async function runTry(phone: string, options: { purpose: string; user: string; channel: string; locale?: string }): Promise<void> {
  const invalid = checkSend(options);
  if (invalid !== null) throw invalid;
  const channel = options.channel as ChannelName;
  const vericode = await commandService({ warnings: true });
  const prompt = createInterface({ input: process.stdin, terminal: false });
  // Lines are read as they come (typed ahead or pasted ones included), one try each.
  const lines = prompt[Symbol.asyncIterator]();
  try {
    const sent = await vericode.otp.sendOtp(phone, options.user, options.purpose, { channel, locale: options.locale ?? null });
    if (!sent.ok) throw new VericodeError(sent.code, sent.message);
    const to = channel === "email" ? (normaliseEmail(phone) ?? phone) : shownPhone(vericode, phone);
    process.stderr.write(`A code went to ${to} by ${channel} (${sent.id}); it expires at ${sent.expiresAt.toISOString()}.\n`);
    for (;;) {
      process.stderr.write("Code: ");
      const line = await lines.next();
      if (line.done === true) throw new Error("the input ended before a right code was typed");
      const code = String(line.value).trim();
      const notACode = checkCode(code);
      if (notACode !== null) {
        process.stderr.write(`${problemText(notACode)} No try was counted.\n`);
        continue;
      }
      const result = await vericode.otp.verifyOtp(phone, code, options.user, options.purpose);
      if (result.ok) {
        process.stdout.write(`Verified: ${to} received the code.\n`);
        return;
      }
      if (result.code !== "otp_invalid") throw new VericodeError(result.code, result.message);
      process.stderr.write(`${result.message}\n`);
    }
  } finally {
    prompt.close();
    await vericode.close();
  }
}
