import { beforeEach, describe, expect, it, vi } from "vitest";

// Counts the parses that reach libphonenumber, so that a test can tell a cached answer from a new one.
const parses = vi.hoisted(() => ({ count: 0 }));
vi.mock("libphonenumber-js/max", async (importOriginal) => {
  const original = await importOriginal<typeof import("libphonenumber-js/max")>();
  return {
    ...original,
    parsePhoneNumberFromString: (...args: Parameters<typeof original.parsePhoneNumberFromString>) => {
      parses.count++;
      return original.parsePhoneNumberFromString(...args);
    },
  };
});

const { clearPhoneCache, invalidNumberReason, maskPhone, normalisePhone, parsePhone } = await import("../src/phone.js");

describe("phone numbers", () => {
  beforeEach(() => {
    clearPhoneCache();
    parses.count = 0;
  });

  it("reads E.164 and national numbers, and refuses what is not a number", () => {
    expect(parsePhone("+50688887777", null)).toMatchObject({ e164: "+50688887777", country: "CR", callingCode: "506" });
    expect(normalisePhone("8888 7777", "CR")).toBe("+50688887777");
    expect(parsePhone("+15005550006", null)?.type).toBeDefined();
    expect(parsePhone("12", null)).toBeNull();
    expect(parsePhone(`+${"1".repeat(40)}`, null)).toBeNull();
    expect(maskPhone("+50688887777")).toBe("********7777");
  });

  it("parses a number once, an invalid one too, until the cache is cleared", () => {
    const first = parsePhone("+50688887777", null);
    // The same answer (a number in E.164 is kept as its text and kind, and answered as a new PhoneInfo).
    expect(parsePhone("+50688887777", null)).toEqual(first);
    expect(parsePhone("12", null)).toBeNull();
    expect(parsePhone("12", null)).toBeNull();
    expect(parses.count).toBe(2);
    // The default country is part of the key: the same digits read for another country are another number.
    expect(parsePhone("88887777", "CR")?.e164).toBe("+50688887777");
    expect(parsePhone("88887777", "US")).toBeNull();
    expect(parses.count).toBe(4);

    clearPhoneCache();
    expect(parsePhone("+50688887777", null)).toEqual(first);
    expect(parsePhone("12", null)).toBeNull();
    expect(parses.count).toBe(6);
  });

  it("keeps the last 50,000 to 100,000 numbers read, a generation of 50,000 at a time", () => {
    parsePhone("+50688887777", null);
    // 49,999 more keys (not numbers: cheap to read) fill the young generation; the next starts another.
    for (let i = 0; i < 49_999; i++) parsePhone(`x${i}`, null);
    parsePhone("+50688886666", null);
    for (let i = 0; i < 49_998; i++) parsePhone(`y${i}`, null);
    parses.count = 0;
    // Both generations hold their numbers: the first read is now in the old one, the second in the young.
    expect(parsePhone("+50688887777", null)?.e164).toBe("+50688887777");
    expect(parsePhone("+50688886666", null)?.e164).toBe("+50688886666");
    expect(parses.count).toBe(0);
    // The young generation is full after one more; the next starts a third: the first number's goes.
    parsePhone("z1", null);
    parsePhone("z2", null);
    parses.count = 0;
    parsePhone("+50688886666", null);
    expect(parses.count).toBe(0);
    parsePhone("+50688887777", null);
    expect(parses.count).toBe(1);
  });

  it("says why a number in E.164 form is not valid, and leaves what is not in that form to the format's hint", () => {
    expect(invalidNumberReason("+447700900111")).toBe("it is in no range of the +44 numbering plan (libphonenumber's metadata)");
    expect(invalidNumberReason("+44 7700 900111")).toBe("it is in no range of the +44 numbering plan (libphonenumber's metadata)");
    expect(invalidNumberReason("+4477009001")).toBe("no +44 number has 8 digits after the country code");
    expect(invalidNumberReason("+44770090011122")).toBe("it is too long for a +44 number");
    expect(invalidNumberReason("+1555")).toBe("it is too short for a +1 number");
    expect(invalidNumberReason("+999123456789")).toBe("it begins with no country calling code");
    for (const malformed of ["+44abc", "0044770090011", "+0123456", "447700900111", `+${"4".repeat(16)}`]) {
      expect(invalidNumberReason(malformed), malformed).toBeNull();
    }
  });
});
