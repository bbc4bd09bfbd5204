import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkCode, checkLocale, checkSend } from "../../src/cli/checks.js";
import { problemText } from "../../src/cli/error-line.js";
import { VericodeError } from "../../src/errors.js";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { startService, type TestService } from "../support/service.js";

const CODES = ["1234", "123456", "1234567890", "123", "12345678901", "12ab", "abc", "", " 1234", "1234 ", "１２３４", "12.4", "-1234"];
const LOCALES = ["es", "en", "pt-BR", "zh-Hant-TW", "e", "not a tag", "es_CR", "pt-", "a".repeat(36), "es-419"];

/** The field errors of a refusal: field, code and message, all of which the CLI says as the API does. */
const fields = (error: VericodeError | null) => (error === null ? null : (error.extra.errors as { field: string }[]));

describe("the CLI's checks refuse exactly what the API refuses", () => {
  let db: TestDatabase;
  let service: TestService;
  let headers: Record<string, string>;

  beforeAll(async () => {
    db = sqliteDatabase();
    service = await startService(db);
    headers = { authorization: `Bearer ${service.tokenFor("usr_cli_checks")}` };
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  it("a code: verify-otp's validation_error for the same ones, naming otp_code", async () => {
    for (const code of CODES) {
      const response = await service.app.inject({
        method: "POST",
        url: "/api/v1/messaging/verify-otp/",
        headers,
        payload: { phone_number: "+50688887001", otp_code: code, purpose: "registration" },
      });
      const api = response.json() as { code: string; detail: string; errors?: { field: string }[] };
      const cli = checkCode(code);
      // No code is pending: what the API does not refuse as malformed, it answers otp_not_found.
      expect({ code, cli: cli?.code ?? "accepted", fields: fields(cli) }).toEqual({
        code,
        cli: api.code === "validation_error" ? "validation_error" : "accepted",
        fields: api.code === "validation_error" ? api.errors : null,
      });
      if (cli !== null) expect(cli.message).toBe(api.detail);
    }
  });

  it("a locale: send-otp's validation_error for the same ones, naming locale", async () => {
    for (const locale of LOCALES) {
      const response = await service.app.inject({
        method: "POST",
        url: "/api/v1/messaging/send-otp/",
        headers: { authorization: `Bearer ${service.tokenFor(`usr_cli_locale_${LOCALES.indexOf(locale)}`)}` },
        payload: { phone_number: "+50688887002", purpose: "registration", locale },
      });
      const api = response.json() as { code?: string; detail: string; errors?: { field: string }[] };
      const cli = checkLocale(locale);
      expect({ locale, cli: cli?.code ?? "accepted", fields: fields(cli) }).toEqual({
        locale,
        cli: api.code === "validation_error" ? "validation_error" : "accepted",
        fields: api.code === "validation_error" ? api.errors : null,
      });
      if (cli !== null) expect(cli.message).toBe(api.detail);
    }
    expect(checkLocale(undefined)).toBeNull();
  });

  it("says what is wrong and the rule, in the API's words", () => {
    expect(problemText(checkCode("12ab") as VericodeError)).toBe("otp_code is not valid: use 4 to 10 digits.");
    expect(problemText(checkLocale("not a tag") as VericodeError)).toBe(
      "locale is not valid: use a language tag of up to 35 characters, such as es, en or pt-BR (BCP 47).",
    );
    expect(problemText(checkSend({ channel: "fax", locale: "x" }) as VericodeError)).toBe(
      "2 fields are not valid. channel is not an allowed value: use one of sms, whatsapp, voice, email. " +
        "locale is not valid: use a language tag of up to 35 characters, such as es, en or pt-BR (BCP 47).",
    );
    expect(checkSend({ channel: "email", locale: "es" })).toBeNull();
  });
});

describe("problemText", () => {
  it("adds each field's hint to the detail, unless the detail already says it", () => {
    const hint = { field: "since", code: "invalid_format" as const, message: "is not valid: use a duration such as 90m, 24h, 7d or 2w" };
    expect(problemText(new VericodeError("validation_error", "The report's since is not valid.", { extra: { errors: [hint] } }))).toBe(
      "The report's since is not valid. since is not valid: use a duration such as 90m, 24h, 7d or 2w.",
    );
    const said = new VericodeError("validation_error", "since is not valid: use a duration such as 90m, 24h, 7d or 2w.", {
      extra: { errors: [hint] },
    });
    expect(problemText(said)).toBe(said.message);
    expect(problemText(new VericodeError("otp_invalid", "The code is not valid. 4 attempts remain."))).toBe(
      "The code is not valid. 4 attempts remain.",
    );
  });
});
