import { afterEach, describe, expect, it, vi } from "vitest";
import { testTokens } from "./support/service.js";

describe("access tokens verified before", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("are refused at their expiry, though the same token passed a moment before", async () => {
    vi.useFakeTimers({ now: Date.parse("2026-11-26T10:00:00Z") });
    const tokens = testTokens();
    const token = tokens.issueAccess({ id: "usr_kept", role: "user" });
    expect(await tokens.verifyAccess(token)).toEqual({ sub: "usr_kept", role: "user", external: false });
    expect(await tokens.verifyAccess(token)).toEqual({ sub: "usr_kept", role: "user", external: false });
    // Access tokens live 900 s (testTokens).
    vi.setSystemTime(Date.parse("2026-11-26T10:14:59Z"));
    expect((await tokens.verifyAccess(token)).sub).toBe("usr_kept");
    vi.setSystemTime(Date.parse("2026-11-26T10:15:01Z"));
    await expect(tokens.verifyAccess(token)).rejects.toThrow(/^The token has expired\.$/);
    await expect(tokens.verifyAccess(token)).rejects.toThrow(/^The token has expired\.$/);
  });

  it("are never told apart by a prefix: another token is verified on its own", async () => {
    const tokens = testTokens();
    const token = tokens.issueAccess({ id: "usr_one", role: "user" });
    await tokens.verifyAccess(token);
    // The signature's second-to-last character, changed (the last one carries two unused bits): judged on
    // that character itself, or one token in 64 (whose character is already "A") was "forged" into itself.
    const forged = `${token.slice(0, -2)}${token.at(-2) === "A" ? "B" : "A"}${token.slice(-1)}`;
    expect(forged).not.toBe(token);
    await expect(tokens.verifyAccess(forged)).rejects.toThrow(/signature|malformed/);
  });
});
