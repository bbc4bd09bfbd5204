import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { FakeTwilio } from "../support/twilio-server.js";
import { lastCode, mobile, startVerifyService, VERIFY_ACCOUNT_SID, VERIFY_AUTH_TOKEN, type VerifyTestService } from "../support/verify.js";

const AUTH = `Basic ${Buffer.from(`${VERIFY_ACCOUNT_SID}:${VERIFY_AUTH_TOKEN}`).toString("base64")}`;

type Schema = Record<string, unknown>;
interface Operation {
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
}
interface OpenApi {
  paths: Record<string, Record<string, Operation>>;
}

/** Every object schema under `schema` that lists properties but leaves others open: none may, or a new field would pass. */
function openObjects(schema: unknown, at = "#"): string[] {
  if (typeof schema !== "object" || schema === null) return [];
  const node = schema as Schema;
  const own = node.properties !== undefined && node.additionalProperties !== false ? [at] : [];
  return [...own, ...Object.entries(node).flatMap(([key, value]) => openObjects(value, `${at}/${key}`))];
}

/**
 * The served OpenAPI document is the /v2 API's contract: a real answer of every /v2 operation, its
 * success and its errors, validates (Ajv, JSON Schema 2020-12 as OpenAPI 3.1) against the schema the
 * document gives for its status. A field the server sends and the document lacks fails, as does a
 * documented field the server leaves out.
 */
describe("the /v2 API against its OpenAPI document", () => {
  const fake = new FakeTwilio();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const validators = new Map<Schema, ValidateFunction>();
  const called = new Set<string>();
  let db: TestDatabase;
  let service: VerifyTestService;
  let doc: OpenApi;

  /** The documented answer of `method template` for `status`: its exact status, else its class (4XX). */
  const documented = (method: string, template: string, status: number) => {
    const operation = doc.paths[template]?.[method.toLowerCase()];
    expect(operation, `${method} ${template} is in the document`).toBeDefined();
    const responses = operation?.responses ?? {};
    const response = responses[String(status)] ?? responses[`${String(status)[0]}XX`];
    expect(response, `${method} ${template} documents ${status}`).toBeDefined();
    return response?.content?.["application/json"]?.schema;
  };

  const validate = (schema: Schema, body: unknown): unknown[] => {
    let check = validators.get(schema);
    if (check === undefined) {
      check = ajv.compile(schema);
      validators.set(schema, check);
    }
    return check(body) ? [] : (check.errors ?? []);
  };

  /** Calls `method template` (its `{names}` filled from `sids`) and checks the answer against the document. */
  const call = async (
    method: string,
    template: string,
    sids: Record<string, string> = {},
    options: { form?: Record<string, string>; query?: string; auth?: string | null; as?: [method: string, template: string] } = {},
  ) => {
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => sids[name] ?? `{${name}}`);
    const response = await fetch(`${service.url}${path}${options.query ?? ""}`, {
      method,
      headers: {
        ...(options.auth === null ? {} : { authorization: options.auth ?? AUTH }),
        ...(options.form === undefined ? {} : { "content-type": "application/x-www-form-urlencoded" }),
      },
      ...(options.form === undefined ? {} : { body: new URLSearchParams(options.form).toString() }),
    });
    const text = await response.text();
    const [docMethod, docTemplate] = options.as ?? [method, template];
    called.add(`${docMethod.toLowerCase()} ${docTemplate}`);
    const schema = documented(docMethod, docTemplate, response.status);
    if (schema === undefined) {
      expect(text, `${method} ${path} ${response.status} has no body`).toBe("");
      return { status: response.status, body: null };
    }
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const body = JSON.parse(text) as Record<string, unknown>;
    expect(validate(schema, body), `${method} ${path} ${response.status}: ${text}`).toEqual([]);
    return { status: response.status, body };
  };

  beforeAll(async () => {
    db = sqliteDatabase();
    await fake.start();
    service = await startVerifyService(db, fake);
    doc = (await (await fetch(`${service.url}/openapi.json`)).json()) as OpenApi;
  });
  afterAll(async () => {
    await service.close();
    await fake.stop();
    await db.drop();
  });

  it("documents a success status for each of the 19 /v2 operations, each body schema closed", () => {
    const operations = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith("/v2/"))
      .flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ path, method, operation })));
    expect(operations).toHaveLength(19);
    for (const { path, method, operation } of operations) {
      const success = Object.keys(operation.responses).filter((status) => status.startsWith("2"));
      const expected = method === "delete" ? "204" : method === "get" ? "200" : /\{Sid\}$|VerificationCheck$/.test(path) ? "200" : "201";
      expect(success, `${method} ${path}`).toEqual([expected]);
      for (const [status, response] of Object.entries(operation.responses)) {
        expect(openObjects(response.content?.["application/json"]?.schema), `${method} ${path} ${status}`).toEqual([]);
      }
    }
  });

  it("every /v2 operation's real answers, successes and errors, validate against the document", async () => {
    const sms = (to: string, extra: Record<string, string> = {}) => ({ form: { To: to, Channel: "sms", ...extra } });
    // Services: two, so that a page of one has a next page.
    const created = await call("POST", "/v2/Services", {}, { form: { FriendlyName: "Contract", LookupEnabled: "true" } });
    expect(created.status).toBe(201);
    await call("POST", "/v2/Services", {}, { form: { FriendlyName: "Contract Two" } });
    const ServiceSid = String(created.body?.sid);
    const page = await call("GET", "/v2/Services", {}, { query: "?PageSize=1&Page=1" });
    expect(page.body?.meta).toMatchObject({ page: 1, page_size: 1, previous_page_url: expect.any(String) });
    expect((await call("GET", "/v2/Services/{Sid}", { Sid: ServiceSid })).status).toBe(200);
    const updated = await call(
      "POST",
      "/v2/Services/{Sid}",
      { Sid: ServiceSid },
      { form: { TtsName: "Contract", "Whatsapp.From": "+15005550006" } },
    );
    expect(updated.body).toMatchObject({ tts_name: "Contract", whatsapp: { from: "+15005550006" } });

    // A rate limit and its bucket: 2 starts per minute for one value.
    const limit = await call("POST", "/v2/Services/{ServiceSid}/RateLimits", { ServiceSid }, { form: { UniqueName: "end_user_ip" } });
    expect(limit).toMatchObject({ status: 201, body: { description: null } });
    const RateLimitSid = String(limit.body?.sid);
    const ids = { ServiceSid, RateLimitSid, Sid: RateLimitSid };
    expect((await call("GET", "/v2/Services/{ServiceSid}/RateLimits", ids)).status).toBe(200);
    expect((await call("GET", "/v2/Services/{ServiceSid}/RateLimits/{Sid}", ids)).status).toBe(200);
    const described = await call("POST", "/v2/Services/{ServiceSid}/RateLimits/{Sid}", ids, { form: { Description: "per user IP" } });
    expect(described.body?.description).toBe("per user IP");
    const buckets = "/v2/Services/{ServiceSid}/RateLimits/{RateLimitSid}/Buckets";
    const bucket = await call("POST", buckets, ids, { form: { Max: "1", Interval: "60" } });
    expect(bucket.status).toBe(201);
    const bucketIds = { ...ids, Sid: String(bucket.body?.sid) };
    expect((await call("GET", buckets, ids)).status).toBe(200);
    expect((await call("GET", `${buckets}/{Sid}`, bucketIds)).status).toBe(200);
    expect((await call("POST", `${buckets}/{Sid}`, bucketIds, { form: { Max: "2" } })).body?.max).toBe(2);

    // Verifications: a start with lookup on, a resend, a fetch, a wrong and a right code, a cancel.
    const verifications = "/v2/Services/{ServiceSid}/Verifications";
    const to = mobile();
    const limited = { RateLimits: JSON.stringify({ end_user_ip: "203.0.113.9" }) };
    const started = await call("POST", verifications, ids, sms(to, limited));
    expect(started.body).toMatchObject({ status: "pending", lookup: { carrier: { type: "mobile" } } });
    const resent = await call("POST", verifications, ids, sms(to, limited));
    expect(resent.body?.send_code_attempts).toHaveLength(2);
    const full = await call("POST", verifications, ids, sms(mobile(), limited));
    expect(full.body).toMatchObject({ status: 429, code: 20429 });
    const VerificationSid = String(started.body?.sid);
    expect((await call("GET", `${verifications}/{Sid}`, { ServiceSid, Sid: VerificationSid })).status).toBe(200);
    const check = "/v2/Services/{ServiceSid}/VerificationCheck";
    const code = lastCode(fake, to);
    const wrong = String((Number(code) + 1) % 10 ** code.length).padStart(code.length, "0");
    expect((await call("POST", check, ids, { form: { To: to, Code: wrong } })).body).toMatchObject({ status: "pending", valid: false });
    expect((await call("POST", check, ids, { form: { To: to, Code: code } })).body).toMatchObject({ status: "approved", valid: true });
    const other = await call("POST", verifications, ids, sms(mobile()));
    const canceled = await call(
      "POST",
      `${verifications}/{Sid}`,
      { ServiceSid, Sid: String(other.body?.sid) },
      { form: { Status: "canceled" } },
    );
    expect(canceled.body?.status).toBe("canceled");

    // Errors: 400, 401, 404 with details, 405 (a method no route takes: the path's documented error body).
    expect((await call("POST", "/v2/Services", {}, { form: {} })).body).toMatchObject({ code: 60200 });
    expect((await call("GET", "/v2/Services", {}, { auth: null })).body).toMatchObject({ code: 20003 });
    const gone = await call("GET", `${verifications}/{Sid}`, { ServiceSid, Sid: VerificationSid });
    expect(gone.body).toMatchObject({ code: 20404, details: { status: "approved" } });
    const refused = await call("PUT", "/v2/Services", {}, { as: ["POST", "/v2/Services"] });
    expect(refused.body).toMatchObject({ status: 405, code: 20004 });

    // Deletes: 204, no body.
    expect((await call("DELETE", `${buckets}/{Sid}`, bucketIds)).status).toBe(204);
    expect((await call("DELETE", "/v2/Services/{ServiceSid}/RateLimits/{Sid}", ids)).status).toBe(204);
    expect((await call("DELETE", "/v2/Services/{Sid}", { Sid: ServiceSid })).status).toBe(204);

    const every = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith("/v2/"))
      .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`));
    expect([...called].sort()).toEqual(every.sort());
  });

  it("fails a body with a field the document lacks, or without one it requires", async () => {
    const schema = documented("POST", "/v2/Services", 201) as Schema;
    const { body } = await call("POST", "/v2/Services", {}, { form: { FriendlyName: "Strict" } });
    expect(validate(schema, body)).toEqual([]);
    expect(validate(schema, { ...body, extra: true })).not.toEqual([]);
    const missing = Object.fromEntries(Object.entries(body ?? {}).filter(([name]) => name !== "url"));
    expect(validate(schema, missing)).not.toEqual([]);
  });
});
