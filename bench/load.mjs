// The load generator, run as its own process so that it does not share a core's event loop with the
// server: autocannon with one different body per request. Reads its plan as JSON from argv[2] and
// prints autocannon's result as one JSON line.

import { readFileSync } from "node:fs";
import autocannon from "autocannon";

const plan = JSON.parse(process.argv[2]);
if (plan.codesFile) plan.codes = JSON.parse(readFileSync(plan.codesFile, "utf8"));
let i = 0;
const body = (n) => {
  if (plan.kind === "send") return JSON.stringify({ phone_number: `+50688${String(n).padStart(6, "0")}`, purpose: "login" });
  if (plan.kind === "verify") {
    const [phone, code] = plan.codes[n % plan.codes.length];
    return JSON.stringify({ phone_number: phone, otp_code: code, purpose: "login" });
  }
  return JSON.stringify({ phone_number: `+50688${String(n).padStart(6, "0")}`, purpose: "login" });
};

const result = await autocannon({
  url: plan.url,
  connections: plan.connections,
  ...(plan.amount ? { amount: plan.amount } : { duration: plan.duration }),
  headers: { "content-type": "application/json", ...(plan.token ? { authorization: `Bearer ${plan.token}` } : {}) },
  method: "POST",
  requests: [{ setupRequest: (request) => ({ ...request, body: body(plan.offset + i++) }) }],
});
process.stdout.write(
  `${JSON.stringify({
    requests: result.requests.average,
    total: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  })}\n`,
);
