import { describe, expect, it } from "vitest";
import { twilioDate } from "../../src/verify/format.js";

describe("twilioDate", () => {
  it("is Twilio's UTC second, milliseconds cut, whichever seconds come one after the other", () => {
    const at = Date.UTC(2026, 10, 26, 0, 37, 47, 999);
    expect(twilioDate(at)).toBe("2026-11-26T00:37:47Z");
    expect(twilioDate(at - 999)).toBe("2026-11-26T00:37:47Z");
    expect(twilioDate(at + 1)).toBe("2026-11-26T00:37:48Z");
    expect(twilioDate(at)).toBe("2026-11-26T00:37:47Z");
    expect(twilioDate(0)).toBe("1970-01-01T00:00:00Z");
    expect(twilioDate(-1)).toBe("1969-12-31T23:59:59Z");
  });
});
