import { VericodeError } from "../errors.js";
import { createVericode } from "../vericode.js";

export async function runSend(phone: string, options: { purpose: string; user: string }): Promise<void> {
  const vericode = await createVericode();
  try {
    const result = await vericode.otp.sendOtp(phone, options.user, options.purpose);
    if (!result.ok) {
      throw new VericodeError(result.code, result.retryAfter === undefined ? result.message : `${result.message}`);
    }
    process.stdout.write(`Code sent to ${phone} (${result.id}); it expires at ${result.expiresAt.toISOString()}.\n`);
  } finally {
    await vericode.close();
  }
}

export async function runVerify(phone: string, code: string, options: { purpose: string; user: string }): Promise<void> {
  const vericode = await createVericode();
  try {
    const result = await vericode.otp.verifyOtp(phone, code, options.user, options.purpose);
    if (!result.ok) throw new VericodeError(result.code, result.message);
    process.stdout.write(`Verified: the code for ${phone} is correct.\n`);
  } finally {
    await vericode.close();
  }
}
