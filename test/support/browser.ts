import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContextOptions, chromium, type Page } from "playwright-core";

/** Debian's Chromium (`apt-get install -y chromium`); CHROMIUM_PATH overrides it. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Whether Chromium is installed. Under CI it must be: its absence is then a failure, never a skip. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`CI is set but Chromium is not at ${CHROMIUM} (apt-get install -y chromium)`);
  console.warn(`Chromium is not at ${CHROMIUM}: the browser tests are skipped (they never are when CI is set).`);
  return false;
}

/**
 * Headless Chromium with what this machine needs: no sandbox as root, and no background networking
 * (the machine's closed network refuses Google's hosts, many at a time, otherwise).
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** The two screens every page is tested on: a phone (390×844, touch) and a laptop (1280×800). */
export const SCREENS: Readonly<Record<"phone" | "desktop", BrowserContextOptions>> = {
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
  desktop: { viewport: { width: 1280, height: 800 } },
};

/**
 * Screenshots of each step, numbered in order, into test-results/browser/<name>/ (emptied first); a name
 * may have a folder of its own (`web-demo/phone`).
 */
export class Screenshots {
  readonly folder: string;
  #step = 0;

  constructor(name: string) {
    this.folder = join(import.meta.dirname, "..", "..", "test-results", "browser", name);
    rmSync(this.folder, { recursive: true, force: true });
    mkdirSync(this.folder, { recursive: true });
  }

  async take(page: Page, step: string): Promise<string> {
    this.#step += 1;
    const file = join(this.folder, `${String(this.#step).padStart(2, "0")}-${step}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  }
}
