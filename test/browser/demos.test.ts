import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { build, type PreviewServer, preview } from "vite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumAvailable, launchChromium, SCREENS, Screenshots } from "../support/browser.js";
import { TEST_SECRETS } from "../support/service.js";
import { serveProcess, type VericodeProcess } from "../support/vericode-process.js";
import { type Walk, walkThroughFlows } from "./flows.js";

const REACT_CONFIG = join(import.meta.dirname, "..", "..", "demo", "react", "vite.config.ts");

/**
 * One person per demo and screen. Fixed codes: the console provider sends nothing for a test number,
 * and the test knows the code. The other numbers are not test numbers (their cooldown holds).
 */
const PEOPLE: Record<string, Omit<Walk, "url">> = {
  "web-demo/phone": { username: "web-ana", phone: "+50688880001", code: "135790", otherPhone: "+50688881001" },
  "web-demo/desktop": { username: "web-bea", phone: "+50688880003", code: "357913", otherPhone: "+50688881003" },
  "react-demo/phone": { username: "react-ana", phone: "+50688880002", code: "246802", otherPhone: "+50688881002" },
  "react-demo/desktop": { username: "react-bea", phone: "+50688880004", code: "468024", otherPhone: "+50688881004" },
};

describe("the demos in headless Chromium, against `vericode serve` with the console provider", () => {
  const ready = chromiumAvailable();
  let folder: string;
  let vericode: VericodeProcess;
  let browser: Browser;
  let reactUrl: string;
  let reactServer: PreviewServer | null = null;

  beforeAll(async () => {
    if (!ready) return;
    folder = mkdtempSync(join(tmpdir(), "vericode-browser-"));
    vericode = await serveProcess({
      ...TEST_SECRETS,
      DATABASE_URL: `sqlite:${join(folder, "vericode.db")}`,
      SMS_PROVIDER: "console",
      OTP_TEST_NUMBERS: Object.values(PEOPLE)
        .map((p) => `${p.phone}=${p.code}`)
        .join(","),
      LOG_LEVEL: "info",
    });
    browser = await launchChromium();
    // The React demo: a Vite build, and its preview server forwarding /api to the service.
    const outDir = join(folder, "react");
    await build({ configFile: REACT_CONFIG, logLevel: "warn", build: { outDir, emptyOutDir: true } });
    reactServer = await preview({
      configFile: REACT_CONFIG,
      logLevel: "warn",
      build: { outDir },
      preview: { host: "127.0.0.1", port: 0, strictPort: false, proxy: { "/api": vericode.address } },
    });
    const address = reactServer.httpServer.address();
    if (address === null || typeof address === "string") throw new Error("the preview server has no port");
    reactUrl = `http://127.0.0.1:${address.port}/`;
  }, 120_000);
  afterAll(async () => {
    await reactServer?.close();
    await browser?.close();
    await vericode?.stop();
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  });

  for (const [screen, size] of Object.entries(SCREENS)) {
    it(`walks every flow of the HTML demo served at /, on a ${screen}`, async (context) => {
      if (!ready) context.skip();
      const name = `web-demo/${screen}`;
      const person = PEOPLE[name] as Omit<Walk, "url">;
      const page = await (await browser.newContext(size)).newPage();
      await walkThroughFlows(page, new Screenshots(name), { url: `${vericode.address}/`, ...person });
      // The whole walk with no code ever printed for a test number.
      expect(vericode.output()).not.toContain(person.code);
    }, 120_000);

    it(`walks every flow of the React demo (Vite build, preview server forwarding /api), on a ${screen}`, async (context) => {
      if (!ready) context.skip();
      const name = `react-demo/${screen}`;
      const page = await (await browser.newContext(size)).newPage();
      await walkThroughFlows(page, new Screenshots(name), { url: reactUrl, ...(PEOPLE[name] as Omit<Walk, "url">) });
    }, 120_000);
  }
});
