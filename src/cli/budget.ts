import { microsToUsd } from "../limits/prices.js";
import { commandService } from "./otp.js";

const usd = (micros: number) => `$${microsToUsd(micros).toFixed(4)}`;

/** Prints the SMS budget of the current period: cap, spent, reserved (sends in flight) and left. */
export async function runBudget(options: { json?: boolean }): Promise<void> {
  const vericode = await commandService();
  try {
    const state = await vericode.protection.budgetState(vericode.clock.now().getTime());
    if (state === null) {
      process.stdout.write(options.json ? `${JSON.stringify({ budget: null })}\n` : "No SMS budget is set (SMS_BUDGET_USD).\n");
      return;
    }
    const left = Math.max(0, state.capMicros - state.spentMicros - state.reservedMicros);
    if (options.json) {
      process.stdout.write(
        `${JSON.stringify({
          period: state.period,
          budget_usd: microsToUsd(state.capMicros),
          spent_usd: microsToUsd(state.spentMicros),
          reserved_usd: microsToUsd(state.reservedMicros),
          left_usd: microsToUsd(left),
        })}\n`,
      );
      return;
    }
    process.stdout.write(
      [
        `period    ${state.period}`,
        `budget    ${usd(state.capMicros)}`,
        `spent     ${usd(state.spentMicros)}`,
        `reserved  ${usd(state.reservedMicros)}`,
        `left      ${usd(left)}`,
        "",
      ].join("\n"),
    );
  } finally {
    await vericode.close();
  }
}
