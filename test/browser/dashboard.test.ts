import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { insertDataSet } from "../analytics/data.js";
import { chromiumAvailable, launchChromium, SCREENS, Screenshots } from "../support/browser.js";
import { openRaw } from "../support/databases.js";
import { TEST_SECRETS } from "../support/service.js";
import { CLI, serveProcess, type VericodeProcess } from "../support/vericode-process.js";

const run = promisify(execFile);

/** 2026-11-05: one SMS code to Costa Rica, verified, and one email code (no country), not verified. */
const NOV_5 = Date.UTC(2026, 10, 5, 10);
const EMAIL_DAY = [
  { id: "otp_email00000000000000000000000001", phone_number: "+50688880009", channel: "sms", status: "verified", country: "CR" },
  { id: "otp_email00000000000000000000000002", phone_number: "ana@example.com", channel: "email", status: "sent", country: null },
].map((c, i) => ({
  ...c,
  user_id: `usr_e${i}`,
  purpose: "login",
  code_hash: null,
  created_at: NOV_5 + i * 60_000,
  expires_at: NOV_5 + i * 60_000 + 600_000,
  verified_at: c.status === "verified" ? NOV_5 + 20_000 : null,
  provider_message_id: `SMe${i}`,
  provider_error_code: null,
  delivery_status: "delivered",
  updated_at: NOV_5 + i * 60_000,
  price_micros: c.channel === "email" ? 0 : 57_000,
  price_final: 1,
  fallback_from: null,
}));

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
    await raw.db.insertInto("otp_codes").values(EMAIL_DAY).execute();
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

  /** Opens the dashboard at `query` in the same tab (the session stays) and waits for its figures. */
  async function show(page: Page, query: string): Promise<void> {
    await page.goto(`${vericode.address}/dashboard/?${query}`);
    await page.waitForSelector('body[data-ready="true"]');
  }

  const fitsTheScreen = (page: Page) =>
    page.evaluate(
      "[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).map((e) => e.tagName + '#' + e.id + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right)).slice(0, 8)",
    );

  for (const [screen, size] of Object.entries(SCREENS)) {
    it(`shows the figures and charts of the data set, on a ${screen}`, async (context) => {
      if (!ready) context.skip();
      const shots = new Screenshots(`dashboard/${screen}`);
      const page = await (await browser.newContext(size)).newPage();
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
      expect(await drawn(page)).toEqual({
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
        empty: [],
      });
      expect(await page.isVisible("#country-email")).toBe(false);
      expect(await page.textContent("#refusals tbody")).toContain("number2");
      expect(await page.textContent("#budget")).toContain("of $10.00");
      expect(await fitsTheScreen(page)).toEqual([]);
      await shots.take(page, "data-set");

      // A filter: Costa Rica only.
      await page.fill("#filters [name=country]", "cr");
      await page.click("#filters button[type=submit]");
      await page.waitForSelector('[data-figure="sent"]:text-is("5")');
      expect(await figure(page, "conversion")).toBe("60.0%");
      await shots.take(page, "costa-rica");

      // The email channel's codes have no country: not a country of the chart, a line of their own.
      await show(page, "from=2026-11-05&to=2026-11-06");
      await page.waitForSelector('[data-figure="sent"]:text-is("2")');
      const day = await drawn(page);
      expect(day.country).toEqual([["CR"], [100]]);
      expect(await page.textContent("#country-email")).toBe("Email codes (no country): 1 sent, 0 verified (0.0%).");
      expect(await page.isVisible("#country-email")).toBe(true);
      expect(await fitsTheScreen(page)).toEqual([]);
      await shots.take(page, "email-apart");

      // A range with nothing in it: each chart says so instead of drawing bare axes.
      await show(page, "from=2026-10-01&to=2026-10-03");
      await page.waitForSelector('[data-figure="sent"]:text-is("0")');
      expect((await drawn(page)).empty).toEqual(["chart-series", "chart-country", "chart-purpose", "chart-failures"]);
      const empty = (await page.evaluate(`[...document.querySelectorAll(".chart")].map((box) => {
        const note = box.querySelector(".empty");
        const r = (note ?? box).getBoundingClientRect();
        return { id: box.querySelector("canvas").id, empty: box.dataset.empty, canvasShown: box.querySelector("canvas").getBoundingClientRect().height > 0,
          note: note?.textContent ?? null, inside: r.left >= 0 && r.right <= window.innerWidth && r.height > 0 };
      })`)) as { id: string; empty: string; canvasShown: boolean; note: string | null; inside: boolean }[];
      expect(empty.map((c) => c.id)).toEqual(["chart-series", "chart-country", "chart-purpose", "chart-failures", "chart-budget"]);
      for (const chart of empty.filter((c) => c.id !== "chart-budget")) {
        expect(chart, chart.id).toEqual({
          id: chart.id,
          empty: "true",
          canvasShown: false,
          note: "No data yet for this range.",
          inside: true,
        });
      }
      // A budget is set (SMS_BUDGET_USD=10): its bar is drawn even when this range spent nothing.
      expect(empty.find((c) => c.id === "chart-budget")?.empty).toBe("false");
      expect(await fitsTheScreen(page)).toEqual([]);
      await shots.take(page, "no-data-yet");
      expect(crashes).toEqual([]);
    }, 120_000);
  }
});

/** What the charts drew (Chart.js's own data), and which charts said "no data" instead. */
async function drawn(page: Page): Promise<{
  count: number;
  series: [string, number[]][];
  country: [string[], number[]];
  purpose: [string[], number[]];
  failures: [string[], number[]];
  empty: string[];
}> {
  return (await page.evaluate(`(() => {
    const charts = window.vericodeCharts;
    const data = (id) => charts.get(id)?.data;
    const bars = (id) => (data(id) === undefined ? null : [data(id).labels, data(id).datasets[0].data]);
    return {
      count: charts.size,
      series: data("chart-series")?.datasets.map((d) => [d.label, d.data]) ?? null,
      country: bars("chart-country"),
      purpose: bars("chart-purpose"),
      failures: bars("chart-failures"),
      empty: [...document.querySelectorAll('.chart[data-empty="true"] canvas')].map((c) => c.id),
    };
  })()`)) as Awaited<ReturnType<typeof drawn>>;
}
