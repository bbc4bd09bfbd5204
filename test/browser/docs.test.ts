import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromiumAvailable, launchChromium, SCREENS, Screenshots } from "../support/browser.js";
import { TEST_SECRETS } from "../support/service.js";
import { serveProcess, type VericodeProcess } from "../support/vericode-process.js";

describe("the API reference at /docs in headless Chromium", () => {
  const ready = chromiumAvailable();
  let folder: string;
  let vericode: VericodeProcess;
  let browser: Browser;

  beforeAll(async () => {
    if (!ready) return;
    folder = mkdtempSync(join(tmpdir(), "vericode-docs-"));
    vericode = await serveProcess({ ...TEST_SECRETS, DATABASE_URL: `sqlite:${join(folder, "vericode.db")}`, LOG_LEVEL: "info" });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await vericode?.stop();
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  });

  for (const [screen, size] of Object.entries(SCREENS)) {
    it(`is vericode's, links the error catalogue and breaks no CSP rule, on a ${screen}`, async (context) => {
      if (!ready) context.skip();
      const shots = new Screenshots(`docs/${screen}`);
      const page = await (await browser.newContext(size)).newPage();
      const errors: string[] = [];
      page.on("console", (message) => {
        if (message.type() === "error") errors.push(message.text());
      });
      page.on("pageerror", (error) => errors.push(error.message));
      // Every CSP refusal, with what it refused (the console line alone does not say).
      await page.addInitScript(
        'document.addEventListener("securitypolicyviolation", (e) => console.error("CSP " + e.violatedDirective + ": " + e.sourceFile + ":" + e.lineNumber))',
      );

      await page.goto(`${vericode.address}/docs`);
      await page.waitForSelector(".information-container .title");
      expect(await page.title()).toBe("vericode API reference");
      expect(await page.textContent(".information-container .title")).toContain("vericode");
      // No top bar: neither Swagger's logo nor the plugin's Fastify one.
      expect(await page.locator(".topbar").count()).toBe(0);
      expect(await page.locator('img[src^="data:image/svg"]').count()).toBe(0);
      expect(await page.getAttribute('link[rel="icon"]', "href")).toContain("vericode.svg");

      // docs/errors.md is a link, and it leads to the catalogue.
      const link = page.locator('.information-container .description a[href$="/docs/errors.md"]');
      expect(await link.count()).toBe(1);
      const catalogue = await page.request.get(new URL((await link.getAttribute("href")) ?? "", page.url()).toString());
      expect(catalogue.status()).toBe(200);
      expect(catalogue.headers()["content-type"]).toBe("text/plain; charset=utf-8");
      expect(await catalogue.text()).toContain("| `validation_error` | 400 |");

      // An operation opened, its schemas drawn: still nothing refused.
      const sendOtp = page.locator(".opblock", { has: page.locator('[data-path="/api/v1/messaging/send-otp/"]') }).first();
      await sendOtp.locator(".opblock-summary-control").click();
      await sendOtp.locator(".opblock-body").waitFor();
      await page.waitForTimeout(300);
      expect(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")).toBe(true);
      await shots.take(page, "api-reference");
      expect(errors).toEqual([]);
    }, 60_000);
  }
});
