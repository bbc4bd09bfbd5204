import { describe, expect, it } from "vitest";
import { twilioDate } from "../../src/verify/format.js";

describe("twilioDate", () => {
  it("is Twilio's UTC second, milliseconds cut, whichever seconds come one after the other", () => {
    const at = Date.UTC(2026, 10, 26, 0, 37, 47, 999);
    expect(twilioDate(at)).toBe("2026-11-26T00:37:47Z");
    expect(twilioDate(at - 999)).toBe("2026-11-26T00:37:47Z");
    expect(twilioDate(at + 1)).toBe("2026-11-26T00:37:48Z");
    expect(twilioDate(at)).toBe("2026-11-26T00:37:47Z");
    // Three seconds in turn: each is formatted again when it is no longer kept.
    for (let round = 0; round < 2; round++) {
      expect(twilioDate(at - 60_000)).toBe("2026-11-26T00:36:47Z");
      expect(twilioDate(at + 1)).toBe("2026-11-26T00:37:48Z");
      expect(twilioDate(at)).toBe("2026-11-26T00:37:47Z");
    }
    expect(twilioDate(0)).toBe("1970-01-01T00:00:00Z");
    expect(twilioDate(-1)).toBe("1969-12-31T23:59:59Z");
    expect(twilioDate(Date.UTC(10000, 0, 1, 0, 0, 0, 5))).toBe("+010000-01-01T00:00:00Z");
  });
});
