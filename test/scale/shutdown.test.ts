import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_SECRETS, testTokens } from "../support/service.js";
import { FakeTwilio } from "../support/twilio-server.js";
import { serveProcess } from "../support/vericode-process.js";

describe("vericode serve on SIGTERM", () => {
  const twilio = new FakeTwilio();
  let folder: string;
  beforeAll(async () => {
    await twilio.start();
    folder = mkdtempSync(join(tmpdir(), "vericode-shutdown-"));
  });
  afterAll(async () => {
    await twilio.stop();
    rmSync(folder, { recursive: true, force: true });
  });

  it("stops accepting, finishes the request in flight, closes the database and exits 0", async () => {
    const vericode = await serveProcess({
      ...TEST_SECRETS,
      ...twilio.env(),
      DATABASE_URL: `sqlite:${join(folder, "vericode.db")}`,
      LOG_LEVEL: "info",
    });
    const tokens = testTokens();
    // Twilio takes 1.5 s to answer this send: SIGTERM arrives while it is in flight.
    twilio.slowNext(1500);
    const inFlight = fetch(`${vericode.address}/api/v1/messaging/send-otp/`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${tokens.issueAccess({ id: "usr_late", role: "user" })}` },
      body: JSON.stringify({ phone_number: "+50688883001", purpose: "login" }),
    });
    while (twilio.messages.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const exited = new Promise<number | null>((resolve) => vericode.child.once("exit", (code) => resolve(code)));
    vericode.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 300));

    // No new connection is taken while the last request finishes.
    await expect(fetch(`${vericode.address}/healthz`)).rejects.toThrow();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ success: true });
    const code = await exited;
    expect(code).toBe(0);
    const log = vericode.output();
    await vericode.stop();
    expect(log).toContain('"event":"shutdown"');
  }, 30_000);
});
