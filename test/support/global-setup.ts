import { mkdirSync, rmSync } from "node:fs";
import { LOG_DIR } from "./logs.js";

/** Each run starts with no logs: `npm test` then scans this run's alone (test/support/check-logs.mjs). */
export function setup(): void {
  rmSync(LOG_DIR, { recursive: true, force: true });
  mkdirSync(LOG_DIR, { recursive: true });
}
