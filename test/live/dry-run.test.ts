import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeTwilio } from "../support/twilio-server.js";

const ROOT = join(import.meta.dirname, "..", "..");

/** Runs `npm run test:twilio-live` with `env`; answers its exit status and output. */
function runLive(env: Record<string, string>): Promise<{ status: number | null; output: string }> {
  const child = spawn("npm", ["run", "--silent", "test:twilio-live"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  return new Promise((resolve) => child.once("exit", (status) => resolve({ status, output })));
}

/**
 * `npm run test:twilio-live` talks to the real Twilio, which CI cannot reach. Its logic is checked here
 * by a dry run against our Twilio-compatible server (TWILIO_API_BASE_URL), with that server's account as
 * the "test credentials": every magic number must come out as the live script expects of Twilio.
 */
describe("npm run test:twilio-live", () => {
  const twilio = new FakeTwilio();
  beforeAll(() => twilio.start());
  afterAll(() => twilio.stop());

  it("runs the magic-number checks through the real SDK (dry run against the local Twilio-compatible server)", async () => {
    const { status, output } = await runLive({
      TWILIO_TEST_ACCOUNT_SID: twilio.accountSid,
      TWILIO_TEST_AUTH_TOKEN: twilio.authToken,
      TWILIO_API_BASE_URL: twilio.url,
    });
    expect(status, output).toBe(0);
    expect(output).toMatch(/7 passed/);
    expect(output).toContain("Live send skipped");
    expect(twilio.messages.some((m) => m.to === "+14155552671")).toBe(true);
  }, 60_000);

  it("skips everything, saying what it needs, without credentials, and never runs under CI", async () => {
    const bare = await runLive({});
    expect(bare.status).toBe(0);
    expect(bare.output).toContain("Twilio test credentials not set: set TWILIO_TEST_ACCOUNT_SID and TWILIO_TEST_AUTH_TOKEN");
    expect(bare.output).toMatch(/8 skipped/);

    const ci = await runLive({ CI: "true", TWILIO_TEST_ACCOUNT_SID: twilio.accountSid, TWILIO_TEST_AUTH_TOKEN: twilio.authToken });
    expect(ci.status).toBe(0);
    expect(ci.output).toContain("never runs under CI");
    expect(ci.output).toMatch(/8 skipped/);
  }, 60_000);
});
