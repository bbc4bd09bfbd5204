// Run by `npm test` after the tests: no log line of the whole run may hold a code that was sent, a
// token, a secret or a full phone number (numbers are masked to their last four digits). Every service
// the tests start logs at debug level, with production's redaction, into test-results/logs/ (see
// test/support/logs.ts), and so do the vericode processes they spawn. The console provider's message
// lines are the one deliberate exception (they are the development "phone"), and they tell which codes
// were sent; the test channels, the Twilio-compatible server and the SMTP server note the others.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const LOG_DIR = join(import.meta.dirname, "..", "..", "test-results", "logs");
const JWT = /eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]+/;
const FULL_NUMBER = /\+\d{7,15}(?!\d)/;
// A masked number (`********4071`) shows only its last four digits, on purpose: not a code that leaked.
const DIGIT_RUN = /(?<![\w.*])\d{4,10}(?![\w.])/g;
const SECRETS = ["test-jwt-secret-", "test-otp-secret-"];
/** Request ids are random UUIDs, whose groups of digits can equal a short code by chance. */
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

if (!existsSync(LOG_DIR)) {
  console.error(`check-logs: ${LOG_DIR} does not exist: run the tests first.`);
  process.exit(1);
}
const files = readdirSync(LOG_DIR);
const codes = new Set();
for (const file of files.filter((f) => f.startsWith("codes-"))) {
  for (const code of readFileSync(join(LOG_DIR, file), "utf8").split("\n")) if (code !== "") codes.add(code);
}
const lines = [];
for (const file of files.filter((f) => f.endsWith(".ndjson"))) {
  for (const line of readFileSync(join(LOG_DIR, file), "utf8").split("\n")) {
    // Log records only: a CLI's one-line reason on stderr is an answer to its user, not a log line.
    if (!line.startsWith("{")) continue;
    if (line.includes('"channel":"console"')) {
      for (const code of /"text":"([^"]*)"/.exec(line)?.[1]?.match(/\d{4,10}/g) ?? []) codes.add(code);
      continue;
    }
    lines.push({ file, line });
  }
}
const problems = [];
for (const { file, line } of lines) {
  const why = [];
  if (JWT.test(line)) why.push("a token");
  if (FULL_NUMBER.test(line)) why.push("a full phone number");
  if (SECRETS.some((secret) => line.includes(secret))) why.push("a secret");
  for (const run of line.replace(UUID, "<uuid>").match(DIGIT_RUN) ?? []) if (codes.has(run)) why.push(`the code ${run}`);
  if (why.length > 0) problems.push(`${file}: ${why.join(", ")}: ${line.slice(0, 400)}`);
}
const checked = `check-logs: ${lines.length} log lines of the test run checked against ${codes.size} codes sent`;
if (problems.length > 0) {
  console.error(`${checked}: ${problems.length} leak(s):\n${problems.slice(0, 20).join("\n")}`);
  process.exit(1);
}
if (lines.length < 500 || codes.size < 100) {
  console.error(`${checked}: too few to mean anything (did the services log?)`);
  process.exit(1);
}
console.log(`${checked}: no code, token, secret or full phone number.`);
