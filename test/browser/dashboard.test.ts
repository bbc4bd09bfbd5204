import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertDataSet } from "../analytics/data.js";
import { chromiumAvailable, launchChromium, Screenshots } from "../support/browser.js";
import { openRaw } from "../support/databases.js";
import { TEST_SECRETS } from "../support/service.js";
import { CLI, serveProcess, type VericodeProcess } from "../support/vericode-process.js";

const run = promisify(execFile);

describe("the dashboard in headless Chromium, on a data set the test made", () => {
  const ready = chromiumAvailable();
  let folder: string;
  let env: Record<string, string>;
  let vericode: VericodeProcess;
  let browser: Browser;

  beforeAll(async () => {
    if (!ready) return;
    folder = mkdtempSync(join(tmpdir(), "vericode-dashboard-"));
    env = { ...TEST_SECRETS, DATABASE_URL: `sqlite:${join(folder, "vericode.db")}`, SMS_BUDGET_USD: "10", LOG_LEVEL: "info" };
    vericode = await serveProcess(env);
    const raw = openRaw({ kind: "sqlite", path: join(folder, "vericode.db") });
    await insertDataSet(raw.db);
    await raw.close();
    for (const username of ["boss", "clerk"]) {
      const response = await fetch(`${vericode.address}/api/v1/auth/register/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ username, password: "correct horse battery" }),
      });
      expect(response.status).toBe(201);
    }
    await run(process.execPath, [CLI, "user", "promote", "boss"], { env: { PATH: process.env.PATH ?? "", ...env } });
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await vericode?.stop();
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
  });

  const figure = (page: Page, name: string) => page.textContent(`[data-figure="${name}"]`);

  async function signIn(page: Page, username: string): Promise<void> {
    await page.waitForSelector("#signin:not([hidden])");
    await page.fill("#signin [name=login]", username);
    await page.fill("#signin [name=password]", "correct horse battery");
    await page.click("#signin button[type=submit]");
  }

  it("shows the figures and charts of the data set, on a laptop and on a phone", async (context) => {
    if (!ready) context.skip();
    const shots = new Screenshots("dashboard");
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    const crashes: string[] = [];
    page.on("pageerror", (error) => crashes.push(error.message));
    await page.goto(`${vericode.address}/dashboard/?from=2026-11-01&to=2026-11-03`);

    // A user without the admin role is turned away with a clear message.
    await signIn(page, "clerk");
    await page.waitForSelector("#notice:not([hidden])");
    expect(await page.textContent("#notice")).toContain("not an admin");
    await shots.take(page, "not-an-admin");

    await signIn(page, "boss");
    await page.waitForSelector('[data-figure="sent"]:text-is("6")');
    expect({
      sent: await figure(page, "sent"),
      delivered: await figure(page, "delivered"),
      verified: await figure(page, "verified"),
      conversion: await figure(page, "conversion"),
      ttv: await figure(page, "ttv"),
      failed: await figure(page, "failed"),
      expired: await figure(page, "expired"),
      refused: await figure(page, "refused"),
      spend: await figure(page, "spend"),
    }).toEqual({
      sent: "6",
      delivered: "4",
      verified: "3",
      conversion: "50.0%",
      ttv: "30 s / 90 s",
      failed: "2",
      expired: "2 / 1",
      refused: "3",
      spend: "$0.241",
    });
    const drawn = (await page.evaluate(`(() => {
      const charts = window.vericodeCharts;
      const data = (id) => charts.get(id).data;
      return {
        count: charts.size,
        series: data("chart-series").datasets.map((d) => [d.label, d.data]),
        country: [data("chart-country").labels, data("chart-country").datasets[0].data],
        purpose: [data("chart-purpose").labels, data("chart-purpose").datasets[0].data],
        failures: [data("chart-failures").labels, data("chart-failures").datasets[0].data],
      };
    })()`)) as Record<string, unknown>;
    expect(drawn).toEqual({
      count: 5,
      series: [
        ["sent", [4, 2]],
        ["verified", [2, 1]],
        ["failed", [0, 2]],
        ["refused", [2, 1]],
      ],
      country: [
        ["CR", "US"],
        [60, 0],
      ],
      purpose: [
        ["registration", "login"],
        [50, 50],
      ],
      failures: [expect.arrayContaining(["21610", "30003"]), [1, 1]],
    });
    expect(await page.textContent("#refusals tbody")).toContain("number2");
    expect(await page.textContent("#budget")).toContain("of $10.00");
    await shots.take(page, "laptop");

    // A filter: Costa Rica only.
    await page.fill("#filters [name=country]", "cr");
    await page.click("#filters button[type=submit]");
    await page.waitForSelector('[data-figure="sent"]:text-is("5")');
    expect(await figure(page, "conversion")).toBe("60.0%");
    await shots.take(page, "laptop-costa-rica");

    await page.setViewportSize({ width: 390, height: 844 });
    await page.fill("#filters [name=country]", "");
    await page.click("#filters button[type=submit]");
    await page.waitForSelector('[data-figure="sent"]:text-is("6")');
    const wide = await page.evaluate(
      "[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).map((e) => e.tagName + '#' + e.id + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)",
    );
    expect(wide).toEqual([]);
    await shots.take(page, "phone");
    expect(crashes).toEqual([]);
  }, 120_000);
});
