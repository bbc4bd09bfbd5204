import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { threadId } from "node:worker_threads";
import pino from "pino";
import { type Logger, loggerOptions } from "../../src/logger.js";

/**
 * Every log line of the test run lands here (test-results/logs/), written by the same logger
 * configuration as production, at debug level; test/support/global-setup.ts reads them all after the
 * run and fails it if any line holds a code, a token, a secret or a full phone number.
 */
export const LOG_DIR = join(import.meta.dirname, "..", "..", "test-results", "logs");

const tag = `${process.pid}-${threadId}`;
let logger: Logger | undefined;

/** The file testLogger writes to: this worker's lines, for a test that reads what the service logged. */
export function testLogFile(): string {
  return join(LOG_DIR, `run-${tag}.ndjson`);
}

/** The test run's logger (one file per test worker). */
export function testLogger(): Logger {
  if (logger === undefined) {
    mkdirSync(LOG_DIR, { recursive: true });
    logger = pino(loggerOptions("debug"), pino.destination({ dest: testLogFile(), sync: true }));
  }
  return logger;
}

/** Notes a code a test channel received, so that the scan after the run knows it. */
export function noteCode(code: string): void {
  mkdirSync(LOG_DIR, { recursive: true });
  appendFileSync(join(LOG_DIR, `codes-${tag}.txt`), `${code}\n`);
}

/** Keeps what a spawned vericode process wrote to its log (stderr), for the same scan. */
export function keepProcessLog(name: string, text: string): void {
  if (text === "") return;
  mkdirSync(LOG_DIR, { recursive: true });
  appendFileSync(join(LOG_DIR, `process-${name}-${tag}.ndjson`), text.endsWith("\n") ? text : `${text}\n`);
}
