import pino from "pino";

/** vericode logs through pino (Fastify's own logger), so one logger serves the core and HTTP. */
export type Logger = pino.Logger;

/**
 * Paths never written to a log at any level: codes, passwords, tokens and secrets. The console
 * channel's message text is the one deliberate exception, and it is refused in production.
 */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-twilio-signature"]',
  "otp_code",
  "code",
  "password",
  "new_password",
  "access",
  "refresh",
  "token",
  "*.otp_code",
  "*.password",
  "*.token",
  "*.access",
  "*.refresh",
];

/** The options of every vericode logger: the level and the redaction of REDACT_PATHS. */
export function loggerOptions(level: string): pino.LoggerOptions {
  return { level, redact: { paths: REDACT_PATHS, censor: "[redacted]" } };
}

/** A pino logger with redaction; `fd` 2 sends the lines to stderr (CLI commands keep stdout for results). */
export function createLogger(level: string, fd: 1 | 2 = 1): Logger {
  return pino(loggerOptions(level), pino.destination({ fd, sync: fd === 2 }));
}
