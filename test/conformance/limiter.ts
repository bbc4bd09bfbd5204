import { describe, expect } from "vitest";
import type { Bucket, Limiter } from "../../src/limits/limiter.js";
import { conformance } from "./harness.js";

const T0 = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
let counter = 0;
const name = (what: string) => `${what}:${++counter}`;
const bucket = (limit: number, windowMs = 10 * MINUTE, rule = "test"): Bucket => ({ key: name(rule), limit, windowMs, rule });

/** The Limiter contract, run against every implementation (SQLite, PostgreSQL and Redis). */
export function testLimiter(make: () => Promise<{ limiter: Limiter; cleanup: () => Promise<void> } | null>): void {
  const suite = conformance(async () => {
    const made = await make();
    return made === null ? null : { subject: made.limiter, cleanup: made.cleanup };
  });
  const { test, subject: limiter } = suite;

  describe("consume", () => {
    test("allows the limit, then refuses until the window that began at the first hit ends", async () => {
      const b = bucket(3);
      for (let i = 0; i < 3; i++) expect(await limiter.consume([b], T0 + i * 1000)).toEqual({ ok: true });
      expect(await limiter.consume([b], T0 + 5000)).toEqual({ ok: false, rule: "test", retryAfterMs: 10 * MINUTE - 5000 });
      expect(await limiter.consume([b], T0 + 10 * MINUTE - 1)).toMatchObject({ ok: false, retryAfterMs: 1 });
      expect(await limiter.consume([b], T0 + 10 * MINUTE)).toEqual({ ok: true });
      expect(await limiter.read([b.key], T0 + 10 * MINUTE)).toEqual([{ count: 1, resetAt: T0 + 20 * MINUTE }]);
    });

    test("is all or nothing: a full bucket takes nothing from the others, and names its rule", async () => {
      const open = bucket(5, 10 * MINUTE, "number");
      const full = bucket(1, 10 * MINUTE, "ip");
      await limiter.consume([full], T0);
      expect(await limiter.consume([open, full], T0 + 1)).toMatchObject({ ok: false, rule: "ip" });
      expect(await limiter.read([open.key, full.key], T0 + 2)).toEqual([
        { count: 0, resetAt: T0 + 2 },
        { count: 1, resetAt: T0 + 10 * MINUTE },
      ]);
    });

    test("of 50 parallel consumes on a bucket of 10, exactly 10 pass", async () => {
      const b = bucket(10);
      const other = bucket(100);
      const results = await Promise.all(Array.from({ length: 50 }, () => limiter.consume([other, b], T0)));
      expect(results.filter((r) => r.ok)).toHaveLength(10);
      expect((await limiter.read([b.key, other.key], T0))[1]?.count).toBe(10);
    });
  });

  describe("release and add", () => {
    test("release gives back a unit of a live window and never goes below zero", async () => {
      const b = bucket(2);
      await limiter.consume([b], T0);
      await limiter.consume([b], T0);
      expect((await limiter.consume([b], T0)).ok).toBe(false);
      await limiter.release([b], T0 + 1);
      expect((await limiter.consume([b], T0 + 2)).ok).toBe(true);
      await limiter.release([b], T0 + 3);
      await limiter.release([b], T0 + 3);
      await limiter.release([b], T0 + 3);
      expect(await limiter.read([b.key], T0 + 4)).toEqual([{ count: 0, resetAt: T0 + 10 * MINUTE }]);
    });

    test("add counts without a limit, in windows that start at the first hit", async () => {
      const key = name("conv");
      for (let i = 0; i < 25; i++) await limiter.add([key], MINUTE, T0);
      expect(await limiter.read([key, name("absent")], T0 + 1)).toEqual([
        { count: 25, resetAt: T0 + MINUTE },
        { count: 0, resetAt: T0 + 1 },
      ]);
      expect(await limiter.read([key], T0 + MINUTE)).toEqual([{ count: 0, resetAt: T0 + MINUTE }]);
      await limiter.add([key], MINUTE, T0 + MINUTE);
      expect(await limiter.read([key], T0 + MINUTE)).toEqual([{ count: 1, resetAt: T0 + 2 * MINUTE }]);
    });
  });

  test("ping answers", async () => {
    await limiter.ping();
  });
}
