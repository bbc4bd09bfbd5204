import { describe, expect, it } from "vitest";
import { newId } from "../src/ids.js";

describe("newId", () => {
  it("answers prefixed 128-bit hex ids, never the same twice, across refills of its random pool", () => {
    const ids = Array.from({ length: 1000 }, () => newId("otp"));
    for (const id of ids) expect(id).toMatch(/^otp_[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(1000);
    expect(newId("usr")).toMatch(/^usr_[0-9a-f]{32}$/);
    expect(newId("ref")).toMatch(/^ref_[0-9a-f]{32}$/);
  });

  it("codes and refusals start with their creation time, so later ids sort after earlier ones; users' ids are all random", () => {
    const t = Date.UTC(2026, 10, 25, 12, 0, 0);
    const first = newId("otp", t);
    expect(first.slice(4, 16)).toBe(t.toString(16).padStart(12, "0"));
    const later = Array.from({ length: 100 }, (_, i) => newId("otp", t + 1 + i));
    expect([first, ...later].sort()).toEqual([first, ...later]);
    // 80 random bits after the time: ids of the same millisecond still differ.
    const same = new Set(Array.from({ length: 1000 }, () => newId("ref", t)));
    expect(same.size).toBe(1000);
    const users = Array.from({ length: 50 }, () => newId("usr").slice(4, 16));
    expect(new Set(users).size).toBe(50);
  });
});
