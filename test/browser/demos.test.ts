import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { build, type PreviewServer, preview } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumAvailable, launchChromium, Screenshots } from "../support/browser.js";
import { TEST_SECRETS } from "../support/service.js";
import { serveProcess, type VericodeProcess } from "../support/vericode-process.js";
import { walkThroughFlows } from "./flows.js";

const REACT_CONFIG = join(import.meta.dirname, "..", "..", "demo", "react", "vite.config.ts");

/** Fixed codes: the console provider sends nothing for them, and the test knows the code. */
const WEB = { phone: "+50688880001", code: "135790" };
const REACT = { phone: "+50688880002", code: "246802" };

describe("the demos in headless Chromium, against `vericode serve` with the console provider", () => {
  const ready = chromiumAvailable();
  let folder: string;
  let vericode: VericodeProcess;
  let browser: Browser;

  beforeAll(async () => {
    if (!ready) return;
    folder = mkdtempSync(join(tmpdir(), "vericode-browser-"));
    vericode = await serveProcess({
      ...TEST_SECRETS,
      DATABASE_URL: `sqlite:${join(folder, "vericode.db")}`,
      SMS_PROVIDER: "console",
      OTP_TEST_NUMBERS: `${WEB.phone}=${WEB.code},${REACT.phone}=${REACT.code}`,
      LOG_LEVEL: "info",
    });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await vericode?.stop();
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  });

  const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true };

  it("walks every flow of the HTML demo served at /", async (context) => {
    if (!ready) context.skip();
    const shots = new Screenshots("web-demo");
    const page = await (await browser.newContext(phone)).newPage();
    await walkThroughFlows(page, shots, { url: `${vericode.address}/`, username: "web-ana", ...WEB });
    // The whole walk, on a phone-sized screen, with no code ever printed for a test number.
    expect(vericode.output()).not.toContain(WEB.code);
  }, 120_000);

  it("walks every flow of the React demo (Vite build, preview server forwarding /api)", async (context) => {
    if (!ready) context.skip();
    const outDir = join(folder, "react");
    await build({ configFile: REACT_CONFIG, logLevel: "warn", build: { outDir, emptyOutDir: true } });
    let server: PreviewServer | null = null;
    try {
      server = await preview({
        configFile: REACT_CONFIG,
        logLevel: "warn",
        build: { outDir },
        preview: { host: "127.0.0.1", port: 0, strictPort: false, proxy: { "/api": vericode.address } },
      });
      const address = server.httpServer.address();
      if (address === null || typeof address === "string") throw new Error("the preview server has no port");
      const shots = new Screenshots("react-demo");
      const page = await (await browser.newContext(phone)).newPage();
      await walkThroughFlows(page, shots, { url: `http://127.0.0.1:${address.port}/`, username: "react-ana", ...REACT });
    } finally {
      await server?.close();
    }
  }, 180_000);
});
