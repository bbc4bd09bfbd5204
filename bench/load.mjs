// The load generator, run as its own process so that it does not share a core's event loop with the
// server: autocannon with one different body per request. Reads its plan as JSON from argv[2] and
// prints autocannon's result as one JSON line.
//
// Kinds: `send` and `verify` (the native JSON API, bearer token), `v2start` and `v2check` (Twilio Verify
// v2's form bodies, HTTP Basic), `ceiling`.

import { readFileSync } from "node:fs";
import autocannon from "autocannon";

const plan = JSON.parse(process.argv[2]);
if (plan.codesFile) plan.codes = JSON.parse(readFileSync(plan.codesFile, "utf8"));
const number = (n) => `+50688${String(n).padStart(6, "0")}`;
const form = (fields) => new URLSearchParams(fields).toString();
let i = 0;
const body = (n) => {
  switch (plan.kind) {
    case "verify": {
      const [phone, code] = plan.codes[n % plan.codes.length];
      return JSON.stringify({ phone_number: phone, otp_code: code, purpose: "login" });
    }
    case "v2start":
      return form({ To: number(n), Channel: "sms" });
    case "v2check": {
      const [phone, code] = plan.codes[n % plan.codes.length];
      return form({ To: phone, Code: code });
    }
    default:
      return JSON.stringify({ phone_number: number(n), purpose: "login" });
  }
};
const v2 = plan.kind === "v2start" || plan.kind === "v2check";
const headers = {
  "content-type": v2 ? "application/x-www-form-urlencoded" : "application/json",
  ...(plan.token ? { authorization: `Bearer ${plan.token}` } : {}),
  ...(plan.basic ? { authorization: `Basic ${plan.basic}` } : {}),
};

// A check answers 200 whether the code matched or not: what counts is `"status":"approved"` in its body.
let approved = 0;
const onResponse =
  plan.kind === "v2check"
    ? (status, text) => {
        if (status === 200 && text.includes('"status":"approved"')) approved++;
      }
    : undefined;

const result = await autocannon({
  url: plan.url,
  // autocannon ends a run, and reads its duration, at its next sample: every 100 ms rather than every
  // second, so that a fixed-amount run's duration is its own to a tenth of a second.
  sampleInt: 100,
  connections: plan.connections,
  ...(plan.amount ? { amount: plan.amount } : { duration: plan.duration }),
  headers,
  method: "POST",
  requests: [{ setupRequest: (request) => ({ ...request, body: body(plan.offset + i++) }), ...(onResponse ? { onResponse } : {}) }],
});
process.stdout.write(
  `${JSON.stringify({
    // Requests over the run's own duration. Not autocannon's `requests.average`, the mean of its samples,
    // one a second by default: a run of a fixed amount (every verify) ends within a second, which counted
    // whole, so the average was the amount over whole seconds (45,454 verifies read as 7,576 a second:
    // 45,454 / 6 exactly), up to a sixth low for a run of about six seconds.
    requests: result.requests.total / result.duration,
    total: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    ...(onResponse ? { approved } : {}),
  })}\n`,
);
