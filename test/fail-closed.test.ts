import { describe, expect, it } from "vitest";
import { failClosed, VericodeError } from "../src/errors.js";

describe("failClosed", () => {
  const guard = failClosed("database");

  it("passes a value through", async () => {
    expect(await guard(Promise.resolve(42))).toBe(42);
  });

  it("turns a broken dependency into service_unavailable with Retry-After, the fault kept as its cause", async () => {
    const fault = new Error("connect ECONNREFUSED 127.0.0.1:5432");
    const error = await guard(Promise.reject(fault)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VericodeError);
    expect(error).toMatchObject({
      code: "service_unavailable",
      status: 503,
      retryAfter: 5,
      message: "The service cannot reach its database. Try again shortly.",
      cause: fault,
    });
  });

  it("leaves an expected failure as it is", async () => {
    const refusal = new VericodeError("unauthorized", "no");
    await expect(guard(Promise.reject(refusal))).rejects.toBe(refusal);
  });
});
