import { describe, expect, it } from "vitest";
import { newId } from "../src/ids.js";

describe("newId", () => {
  it("answers prefixed 128-bit hex ids, never the same twice, across refills of its random pool", () => {
    const ids = Array.from({ length: 1000 }, () => newId("otp"));
    for (const id of ids) expect(id).toMatch(/^otp_[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(1000);
    expect(newId("usr")).toMatch(/^usr_[0-9a-f]{32}$/);
  });
});
