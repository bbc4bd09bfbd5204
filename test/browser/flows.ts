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
}

/**
 * Drives a demo (the HTML one and the React one share their ids and labels) through every flow, as a
 * person on a phone would: registration with the phone's verification (a wrong code first), password
 * sign-in, passwordless login (a bad number first), a code for a signed-in user, and a password reset
 * after which the old password fails and the new one works. A screenshot after each step.
 */
export async function walkThroughFlows(page: Page, shots: Screenshots, walk: Walk): Promise<void> {
  const crashes: string[] = [];
  page.on("pageerror", (error) => crashes.push(error.message));
  const password = "correct horse battery";
  const newPassword = "a brand new passphrase";
  const wrongCode = walk.code.slice(0, -1) + String((Number(walk.code.at(-1)) + 1) % 10);

  const session = page.locator("#session");
  const notice = page.locator("#notice");
  const tab = (name: string) => page.click(`[data-tab="${name}"]`);
  const noticeCode = async (code: string) => {
    await page.waitForSelector(`#notice[data-code="${code}"]`);
    return (await notice.textContent()) ?? "";
  };
  const signedOut = () => page.waitForSelector('#session[data-state="signed-out"]');
  const signOut = async () => {
    await tab("signin");
    await page.click("#signout");
    await signedOut();
  };

  await page.goto(walk.url);
  await page.waitForSelector('[data-ready="true"]');
  expect(await session.textContent()).toContain("Not signed in");
  // Fits a phone: nothing wider than the screen.
  expect(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")).toBe(true);
  await shots.take(page, "home");

  // Registration, then the phone's verification.
  await page.fill("#register-form [name=username]", walk.username);
  await page.fill("#register-form [name=password]", password);
  await page.fill("#register-form [name=phone_number]", walk.phone);
  await page.click("#register-form button[type=submit]");
  await page.waitForSelector("#register-code:not([hidden]) [name=code]");
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
  await shots.take(page, "phone-verified");

  // Password sign-in.
  await signOut();
  await page.fill("#signin-form [name=login]", walk.username);
  await page.fill("#signin-form [name=password]", password);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector('#session[data-state="verified"]');
  await shots.take(page, "signed-in-with-password");

  // Passwordless login: a bad number is refused clearly, then the account's number gets a code.
  await signOut();
  await tab("passwordless");
  await page.fill("#passwordless-form [name=phone_number]", "12ab");
  await page.click("#passwordless-form button[type=submit]");
  expect(await noticeCode("invalid_phone_number")).toContain("not valid");
  await shots.take(page, "passwordless-bad-number");
  await page.fill("#passwordless-form [name=phone_number]", walk.phone);
  await page.click("#passwordless-form button[type=submit]");
  await page.waitForSelector("#passwordless-code:not([hidden]) [name=code]");
  expect(await notice.textContent()).toContain("If this number belongs to an account");
  await shots.take(page, "passwordless-code-sent");
  await page.fill("#passwordless-code [name=code]", walk.code);
  await page.click("#passwordless-code button[type=submit]");
  await page.waitForSelector('#session[data-state="verified"]');
  await shots.take(page, "signed-in-with-code");

  // Any code for the signed-in user.
  await tab("codes");
  await page.fill("#codes-form [name=phone_number]", walk.phone);
  await page.selectOption("#codes-form [name=purpose]", "login");
  await page.click("#codes-form button[type=submit]");
  await page.waitForSelector("#codes-code:not([hidden]) [name=code]");
  await shots.take(page, "code-sent");
  await page.fill("#codes-code [name=code]", walk.code);
  await page.click("#codes-code button[type=submit]");
  await notice.filter({ hasText: "Code verified" }).waitFor();
  expect(await page.isVisible("#codes-code")).toBe(false);
  await shots.take(page, "code-verified");

  // Password reset: the code and a new password; the old one stops working.
  await signOut();
  await tab("reset");
  await page.fill("#reset-form [name=phone_number]", walk.phone);
  await page.click("#reset-form button[type=submit]");
  await page.waitForSelector("#reset-code:not([hidden]) [name=code]");
  await page.fill("#reset-code [name=code]", walk.code);
  await page.fill("#reset-code [name=new_password]", newPassword);
  await shots.take(page, "reset-code-and-new-password");
  await page.click("#reset-code button[type=submit]");
  await page.waitForSelector("#signin-form");
  expect(await notice.textContent()).toContain("Sign in with the new password");

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
