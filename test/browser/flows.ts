import type { Page } from "playwright-core";
import { expect } from "vitest";
import type { Screenshots } from "../support/browser.js";

export interface Walk {
  /** The demo's page. */
  url: string;
  username: string;
  /** A number of OTP_TEST_NUMBERS and its fixed code. */
  phone: string;
  code: string;
  /** A number that is not a test number: the console provider "sends" to it, and its cooldown holds. */
  otherPhone: string;
}

interface Box {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** How many times `pattern` (global) matches `text`. */
export function count(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0;
}

/** A wait as people write it: "28 s", "28 seconds", "2 min". */
const WAIT = /\b\d+\s?(?:s|secs?|seconds?|min|minutes?)\b/gi;

/**
 * The flow tabs fit one row: every tab on the same line, inside the bar and the screen, its label on one
 * line and not cut.
 */
export async function expectTabsInOneRow(page: Page): Promise<void> {
  const layout = (await page.evaluate(`(() => {
    const box = (e) => { const r = e.getBoundingClientRect(); return { left: r.left, right: r.right, top: r.top, bottom: r.bottom }; };
    const nav = document.querySelector("nav");
    const tabs = [...nav.querySelectorAll("[data-tab]")];
    return {
      width: window.innerWidth,
      nav: box(nav),
      tabs: tabs.map((t) => ({ ...box(t), cut: t.scrollWidth > t.clientWidth, lines: Math.round((t.clientHeight - parseFloat(getComputedStyle(t).paddingTop) - parseFloat(getComputedStyle(t).paddingBottom)) / parseFloat(getComputedStyle(t).lineHeight)) })),
    };
  })()`)) as { width: number; nav: Box; tabs: (Box & { cut: boolean; lines: number })[] };
  expect(layout.tabs.length).toBeGreaterThanOrEqual(3);
  const first = layout.tabs[0] as Box;
  for (const tab of layout.tabs) {
    expect(Math.abs(tab.top - first.top), "every tab on the first row").toBeLessThanOrEqual(1);
    expect(tab.left).toBeGreaterThanOrEqual(layout.nav.left - 1);
    expect(tab.right).toBeLessThanOrEqual(Math.min(layout.nav.right, layout.width) + 1);
    expect(tab.cut, "a tab's label is cut").toBe(false);
    expect(tab.lines, "a tab's label on one line").toBeLessThanOrEqual(1);
  }
}

/** Each named field error sits right under its input, as wide as the form, inside the screen. */
async function expectBesideItsInput(page: Page, form: string, field: string, message: string): Promise<void> {
  const note = page.locator(`#${form} [data-error-for="${field}"]`);
  await note.waitFor();
  expect(await note.textContent()).toBe(message);
  const input = page.locator(`#${form} [name="${field}"]`);
  expect(await input.getAttribute("aria-invalid")).toBe("true");
  expect(await input.getAttribute("aria-describedby")).toBe(await note.getAttribute("id"));
  const [inputBox, noteBox] = [await input.boundingBox(), await note.boundingBox()];
  if (inputBox === null || noteBox === null) throw new Error(`#${form} ${field}: not displayed`);
  const gap = noteBox.y - (inputBox.y + inputBox.height);
  expect(gap, `${field}'s error right under its input`).toBeGreaterThanOrEqual(-1);
  expect(gap).toBeLessThan(24);
  expect(noteBox.x).toBeGreaterThanOrEqual(inputBox.x - 1);
  expect(noteBox.x + noteBox.width).toBeLessThanOrEqual(Math.max(inputBox.x + inputBox.width, page.viewportSize()?.width ?? 0) + 1);
}

/**
 * Drives a demo (the HTML one and the React one share their ids and labels) through every flow, as a
 * person would, at the page's size: registration with every invalid field at once (each error beside
 * its field), then the phone's verification (a wrong code first); password sign-in; passwordless login
 * (a bad number first, and a problem naming a field the form lacks); a code for a signed-in user (its
 * delivery explained, a cooldown that says its wait once); a password reset after which the old
 * password fails and the new one works. After each success the filled form is gone and the notice says
 * what happened once. A screenshot after each step.
 */
export async function walkThroughFlows(page: Page, shots: Screenshots, walk: Walk): Promise<void> {
  const crashes: string[] = [];
  page.on("pageerror", (error) => crashes.push(error.message));
  const password = "correct horse battery";
  const newPassword = "a brand new passphrase";
  const wrongCode = walk.code.slice(0, -1) + String((Number(walk.code.at(-1)) + 1) % 10);

  const session = page.locator("#session");
  const notice = page.locator("#notice");
  const gone = async (selector: string) => expect(await page.isVisible(selector), `${selector} is gone`).toBe(false);
  /** The three tabs, and the two ways of signing in behind "Sign in". */
  const open = async (panel: string) => {
    const behindSignIn = panel === "passwordless" || panel === "reset";
    await page.click(`[data-tab="${behindSignIn ? "signin" : panel}"]`);
    if (behindSignIn) await page.click(`[data-open="${panel}"]`);
    await page.waitForSelector(`[data-panel="${panel}"]:not([hidden])`);
  };
  const noticeCode = async (code: string) => {
    await page.waitForSelector(`#notice[data-code="${code}"]`);
    return (await notice.textContent()) ?? "";
  };
  /** The success notice: each of its sentences once. */
  const saidOnce = async (text: string) => {
    await notice.filter({ hasText: text }).waitFor();
    const said = (await notice.textContent()) ?? "";
    const sentences = said.split(/(?<=[.!])\s+/).filter((s) => s !== "");
    expect(new Set(sentences).size, said).toBe(sentences.length);
    return said;
  };
  const signedOut = () => page.waitForSelector('#session[data-state="signed-out"]');
  const signOut = async () => {
    await open("signin");
    await page.click("#signout");
    await signedOut();
  };

  await page.goto(walk.url);
  await page.waitForSelector('[data-ready="true"]');
  expect(await session.textContent()).toContain("Not signed in");
  // Fits the screen: nothing wider than it, and the tabs in one row.
  expect(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")).toBe(true);
  await expectTabsInOneRow(page);
  await shots.take(page, "home");

  // Registration with three bad fields at once: each error the answer names (errors[]) beside its field.
  await page.fill("#register-form [name=username]", "a!");
  await page.fill("#register-form [name=password]", "short");
  await page.fill("#register-form [name=phone_number]", "12ab");
  const refused = page.waitForResponse((r) => r.url().includes("/auth/register/") && r.request().method() === "POST");
  await page.click("#register-form button[type=submit]");
  const problem = (await (await refused).json()) as { code: string; errors?: { field: string; message: string }[] };
  expect(problem.code).toBe("validation_error");
  const named = (problem.errors ?? []).filter((e) => ["username", "password", "phone_number"].includes(e.field));
  expect(named.map((e) => e.field)).toEqual(expect.arrayContaining(["username", "password"]));
  const general = await noticeCode("validation_error");
  for (const { field, message } of named) {
    await expectBesideItsInput(page, "register-form", field, message);
    // Said beside the field, not again in the notice.
    expect(general).not.toContain(message);
  }
  expect(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")).toBe(true);
  await shots.take(page, "register-field-errors");
  // Typing in a field takes its error away.
  await page.fill("#register-form [name=username]", walk.username);
  expect(await page.locator('#register-form [data-error-for="username"]').count()).toBe(0);

  // Registration, then the phone's verification: the code step takes the form's place.
  await page.fill("#register-form [name=password]", password);
  await page.fill("#register-form [name=phone_number]", walk.phone);
  await page.click("#register-form button[type=submit]");
  await page.waitForSelector("#register-code:not([hidden]) [name=code]");
  await gone("#register-form");
  expect(await page.locator("[data-error-for]").count()).toBe(0);
  expect(await page.getAttribute("#register-code [name=code]", "autocomplete")).toBe("one-time-code");
  expect(await page.getAttribute("#register-code [name=code]", "inputmode")).toBe("numeric");
  await page.waitForSelector('#session[data-state="unverified"]');
  await shots.take(page, "registered-code-sent");

  await page.fill("#register-code [name=code]", wrongCode);
  await page.click("#register-code button[type=submit]");
  expect(await noticeCode("otp_invalid")).toMatch(/not right.*4 tries left/);
  await shots.take(page, "wrong-code");

  await page.fill("#register-code [name=code]", walk.code);
  await page.click("#register-code button[type=submit]");
  await page.waitForSelector('#session[data-state="verified"]');
  expect(await session.textContent()).toContain(`Signed in as ${walk.username}`);
  expect(await session.textContent()).toContain(`${walk.phone} (verified)`);
  // "Phone verified. Code verified." said it twice: one sentence now, and the filled form is gone.
  expect(count(await saidOnce("verified"), /verified/gi)).toBe(1);
  await gone("#register-form");
  await gone("#register-code");
  await page.waitForSelector('[data-panel="register"] [data-action="again"]');
  await shots.take(page, "phone-verified");

  // Password sign-in: the form gives way to the session.
  await signOut();
  await page.fill("#signin-form [name=login]", walk.username);
  await page.fill("#signin-form [name=password]", password);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector('#session[data-state="verified"]');
  await saidOnce("Signed in");
  await gone("#signin-form");
  await shots.take(page, "signed-in-with-password");

  // Passwordless login: a bad number is refused beside its field, then the account's number gets a code.
  await signOut();
  await open("passwordless");
  await page.fill("#passwordless-form [name=phone_number]", "12ab");
  await page.click("#passwordless-form button[type=submit]");
  expect(await noticeCode("invalid_phone_number")).toContain("not valid");
  await page.locator('#passwordless-form [data-error-for="phone_number"]').waitFor();
  await shots.take(page, "passwordless-bad-number");

  // A problem that also names a field this form does not have: that one is said in the notice.
  await page.route(
    "**/api/v1/auth/login/otp/",
    (route) =>
      route.fulfill({
        status: 400,
        contentType: "application/problem+json",
        body: JSON.stringify({
          type: "/problems/validation_error",
          title: "Invalid request",
          status: 400,
          code: "validation_error",
          detail: "Two fields.",
          message: "Two fields.",
          errors: [
            { field: "phone_number", message: "A message for the number." },
            { field: "locale", message: "A message for a field the form lacks." },
          ],
        }),
      }),
    { times: 1 },
  );
  await page.click("#passwordless-form button[type=submit]");
  await page.waitForSelector('#notice[data-code="validation_error"]');
  await expectBesideItsInput(page, "passwordless-form", "phone_number", "A message for the number.");
  expect(await notice.textContent()).toContain("locale: A message for a field the form lacks.");
  expect(await notice.textContent()).not.toContain("A message for the number.");
  await shots.take(page, "passwordless-general-error");

  await page.fill("#passwordless-form [name=phone_number]", walk.phone);
  await page.click("#passwordless-form button[type=submit]");
  await page.waitForSelector("#passwordless-code:not([hidden]) [name=code]");
  await gone("#passwordless-form");
  // The code step says it; the notice does not say it again.
  expect(await page.textContent("#passwordless-code")).toContain("If this number belongs to an account");
  await gone("#notice");
  await shots.take(page, "passwordless-code-sent");
  await page.fill("#passwordless-code [name=code]", walk.code);
  await page.click("#passwordless-code button[type=submit]");
  await page.waitForSelector('#session[data-state="verified"]');
  await saidOnce("Signed in with a code");
  await gone("#passwordless-code");
  await shots.take(page, "signed-in-with-code");

  // Any code for the signed-in user: its delivery in words, then verified, and the form gone.
  await open("codes");
  await page.fill("#codes-form [name=phone_number]", walk.phone);
  await page.selectOption("#codes-form [name=purpose]", "login");
  await page.click("#codes-form button[type=submit]");
  await page.waitForSelector("#codes-code:not([hidden]) [name=code]");
  await gone("#codes-form");
  await page.waitForSelector('[data-field="delivery"][data-status="not_sent"]');
  expect(await page.textContent('[data-field="delivery"]')).toContain("test number");
  await shots.take(page, "code-sent");
  await page.fill("#codes-code [name=code]", walk.code);
  await page.click("#codes-code button[type=submit]");
  expect(count(await saidOnce("Code verified"), /verified/gi)).toBe(1);
  await gone("#codes-code");
  await gone("#codes-form");
  await shots.take(page, "code-verified");

  // A number the console provider "sends" to: `logged` is explained. Asking again at once is refused
  // by the cooldown, whose notice says the wait once.
  await page.click('[data-panel="codes"] [data-action="again"]');
  await page.fill("#codes-form [name=phone_number]", walk.otherPhone);
  await page.click("#codes-form button[type=submit]");
  await page.waitForSelector('[data-field="delivery"][data-status="logged"]');
  const logged = (await page.textContent('[data-field="delivery"]')) ?? "";
  expect(logged).not.toBe("logged");
  expect(logged).toContain("console provider");
  expect(logged).toContain("log");
  await shots.take(page, "code-logged");
  await page.click('#codes-code [data-action="back"]');
  expect(await page.inputValue("#codes-form [name=phone_number]")).toBe(walk.otherPhone);
  await page.click("#codes-form button[type=submit]");
  const cooldown = await noticeCode("rate_limited");
  expect(count(cooldown, WAIT), cooldown).toBe(1);
  await shots.take(page, "cooldown");

  // Password reset: the code and a new password; the old one stops working.
  await signOut();
  await open("reset");
  await page.fill("#reset-form [name=phone_number]", walk.phone);
  await page.click("#reset-form button[type=submit]");
  await page.waitForSelector("#reset-code:not([hidden]) [name=code]");
  await gone("#reset-form");
  await page.fill("#reset-code [name=code]", walk.code);
  await page.fill("#reset-code [name=new_password]", newPassword);
  await shots.take(page, "reset-code-and-new-password");
  await page.click("#reset-code button[type=submit]");
  await page.waitForSelector("#signin-form");
  expect(await saidOnce("Sign in with the new password")).toBeTruthy();

  await page.fill("#signin-form [name=login]", walk.username);
  await page.fill("#signin-form [name=password]", password);
  await page.click("#signin-form button[type=submit]");
  expect(await noticeCode("unauthorized")).toBeTruthy();
  await shots.take(page, "old-password-refused");
  await page.fill("#signin-form [name=password]", newPassword);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector('#session[data-state="verified"]');
  await shots.take(page, "signed-in-with-new-password");

  expect(crashes).toEqual([]);
}
