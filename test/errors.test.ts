import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_CATALOG, ERROR_CODES } from "../src/errors.js";
import { buildApp } from "../src/http/app.js";
import { createVericode } from "../src/vericode.js";
import { testLogger } from "./support/logs.js";
import { TEST_SECRETS } from "./support/service.js";

describe("the error catalog", () => {
  it("is append-only: the published codes keep their status", () => {
    // Add new codes at the end of both lists; never edit or remove a line.
    expect(Object.entries(ERROR_CATALOG).map(([code, { status }]) => `${code} ${status}`)).toEqual([
      "validation_error 400",
      "invalid_phone_number 400",
      "unauthorized 401",
      "otp_invalid 400",
      "otp_expired 400",
      "otp_attempts_exceeded 400",
      "otp_not_found 400",
      "rate_limited 429",
      "destination_not_allowed 422",
      "provider_rejected 422",
      "provider_unavailable 503",
      "unsupported_media_type 415",
      "payload_too_large 413",
      "internal_error 500",
      "not_found 404",
      "service_unavailable 503",
      "budget_exceeded 503",
      "forbidden 403",
      "channel_unavailable 422",
      "invalid_email 400",
      "phone_verification_required 403",
      "idempotency_key_reused 422",
      "idempotency_key_in_use 409",
      "method_not_allowed 405",
    ]);
  });

  it("matches docs/errors.md row for row", () => {
    const doc = readFileSync(join(import.meta.dirname, "..", "docs", "errors.md"), "utf8");
    const rows = [...doc.matchAll(/^\| `(\w+)` \| ([\d, ]+) \|/gm)].map((m) => [m[1], m[2]?.split(", ").map(Number)] as const);
    expect(rows.map(([code]) => code)).toEqual(ERROR_CODES);
    for (const [code, statuses] of rows) expect(statuses).toContain(ERROR_CATALOG[code as keyof typeof ERROR_CATALOG].status);
  });

  it("is the code enum of the OpenAPI document's Problem", async () => {
    const vericode = await createVericode({
      env: { ...TEST_SECRETS, DATABASE_URL: "sqlite::memory:" },
      envFile: false,
      logger: testLogger(),
    });
    const app = await buildApp(vericode);
    const doc = (await app.inject("/openapi.json")).json();
    expect(doc.components.schemas.Problem.properties.code.enum).toEqual(ERROR_CODES);
    await app.close();
    await vericode.close();
  });
});
