import { createSigner } from "fast-jwt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createClient,
  describeError,
  ERROR_MESSAGES,
  memoryTokenStore,
  VericodeApiError,
  type VericodeClient,
  webStorageTokenStore,
} from "../src/client/index.js";
import { ERROR_CODES } from "../src/errors.js";
import { sqliteDatabase, type TestDatabase } from "./support/databases.js";
import { RecordingChannel, startService, TEST_SECRETS, type TestService } from "./support/service.js";

describe("vericode/client against a running service", () => {
  let db: TestDatabase;
  let service: TestService;
  let baseUrl: string;
  const channel = new RecordingChannel();

  beforeAll(async () => {
    db = sqliteDatabase();
    service = await startService(db, { channel });
    baseUrl = await service.app.listen({ port: 0, host: "127.0.0.1" });
  });
  afterAll(async () => {
    await service.close();
    await db.drop();
  });

  async function caught(promise: Promise<unknown>): Promise<VericodeApiError> {
    const error = await promise.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(VericodeApiError);
    return error as VericodeApiError;
  }

  it("registers, verifies a number and reads the account, keeping its tokens", async () => {
    const api = createClient({ baseUrl });
    const created = await api.register({ username: "client-ana", password: "correct horse battery" });
    expect(api.tokens).toEqual({ access: created.access, refresh: created.refresh });

    const sent = await api.sendOtp({ phone_number: "+50687770001", purpose: "registration" });
    expect(sent).toMatchObject({ success: true, id: expect.stringMatching(/^otp_/) });
    const wrong = await caught(api.verifyOtp({ phone_number: "+50687770001", otp_code: "000000", purpose: "registration" }));
    if (channel.lastCodeTo("+50687770001") !== "000000") {
      expect(wrong.code).toBe("otp_invalid");
      expect(wrong.status).toBe(400);
      expect(wrong.attemptsRemaining).toBe(4);
      expect(describeError(wrong)).toBe(`${ERROR_MESSAGES.otp_invalid} 4 tries left.`);
    }
    await api.verifyOtp({ phone_number: "+50687770001", otp_code: channel.lastCodeTo("+50687770001"), purpose: "registration" });
    expect(await api.me()).toMatchObject({ username: "client-ana", phone_number: "+50687770001", phone_verified: true });
    expect(await api.otpStatus(sent.id)).toMatchObject({ id: sent.id, status: "verified" });
  });

  it("answers problems as VericodeApiError with code, status, fields and Retry-After", async () => {
    const api = createClient({ baseUrl });
    const invalid = await caught(api.register({ username: "x", password: "short" }));
    expect(invalid.code).toBe("validation_error");
    expect(invalid.fieldErrors.length).toBeGreaterThan(0);

    expect((await caught(api.me())).code).toBe("unauthorized");
    await api.register({ username: "client-cooldown", password: "correct horse battery" });
    await api.sendOtp({ phone_number: "+50687770002", purpose: "login" });
    // NO_LIMITS keeps the cooldown at its base (30 s): the second send inside it is refused.
    const cooldown = await caught(api.sendOtp({ phone_number: "+50687770002", purpose: "login" }));
    expect(cooldown.code).toBe("rate_limited");
    expect(cooldown.status).toBe(429);
    expect(cooldown.retryAfter).toBeGreaterThan(0);
    expect(describeError(cooldown)).toMatch(/^Too many requests\. .*\(wait \d+ s\)$/);

    const unreachable = createClient({ baseUrl: "http://127.0.0.1:1" });
    const network = await caught(unreachable.startLogin("+50687770003"));
    expect(network).toMatchObject({ code: "network_error", status: 0 });
  });

  it("renews an expired access token once with the refresh token and retries", async () => {
    const tokens = memoryTokenStore();
    const api: VericodeClient = createClient({ baseUrl, tokens });
    const created = await api.register({ username: "client-refresh", password: "correct horse battery" });
    const expired = createSigner({ key: TEST_SECRETS.JWT_SECRET, algorithm: "HS256", iss: "vericode", aud: "vericode" })({
      sub: created.user.id,
      role: "user",
      token_use: "access",
      exp: Math.floor(Date.now() / 1000) - 60,
    });
    tokens.set({ access: expired, refresh: created.refresh });
    expect(await api.me()).toMatchObject({ id: created.user.id });
    expect(api.tokens?.access).not.toBe(expired);

    // A refresh token that no longer works signs the client out.
    tokens.set({ access: expired, refresh: "not.a.token" });
    expect((await caught(api.me())).code).toBe("unauthorized");
    expect(api.tokens).toBeNull();
  });

  it("walks passwordless login and password reset", async () => {
    const api = createClient({ baseUrl });
    await api.register({ username: "client-flows", password: "correct horse battery" });
    await api.sendOtp({ phone_number: "+50687770004", purpose: "registration" });
    await api.verifyOtp({ phone_number: "+50687770004", otp_code: channel.lastCodeTo("+50687770004"), purpose: "registration" });
    api.logout();
    expect(api.tokens).toBeNull();

    const waitFor = async (count: number) => {
      for (let i = 0; i < 100 && channel.sentTo("+50687770004") < count; i++) await new Promise((r) => setTimeout(r, 10));
      return channel.lastCodeTo("+50687770004");
    };
    const started = await api.startLogin("+50687770004");
    expect(started.success).toBe(true);
    await api.finishLogin("+50687770004", await waitFor(2));
    expect(await api.me()).toMatchObject({ username: "client-flows" });

    await api.startPasswordReset("+50687770004");
    const done = await api.confirmPasswordReset("+50687770004", await waitFor(3), "a brand new passphrase");
    expect(done.success).toBe(true);
    await api.login({ username: "client-flows", password: "a brand new passphrase" });
    expect(api.tokens).not.toBeNull();
  });
});

describe("vericode/client without a service", () => {
  it("has a plain message for every error code the API can answer", () => {
    for (const code of ERROR_CODES) expect(ERROR_MESSAGES[code], code).toMatch(/\S/);
  });

  it("keeps tokens in a Web Storage area and ignores what it cannot read", () => {
    const area = new Map<string, string>();
    const storage = {
      getItem: (k: string) => area.get(k) ?? null,
      setItem: (k: string, v: string) => void area.set(k, v),
      removeItem: (k: string) => void area.delete(k),
    };
    const store = webStorageTokenStore(storage, "t");
    store.set({ access: "a", refresh: "r" });
    expect(webStorageTokenStore(storage, "t").get()).toEqual({ access: "a", refresh: "r" });
    area.set("t", "{not json");
    expect(store.get()).toBeNull();
    store.set(null);
    expect(area.has("t")).toBe(false);
  });

  it("imports nothing from Node, so pages can load it as it is", async () => {
    const { readFileSync } = await import("node:fs");
    const source = readFileSync(new URL("../src/client/index.ts", import.meta.url), "utf8");
    expect(source).not.toMatch(/from "node:/);
    // The server's modules only for their types (the reports' schemas): erased from the built client.
    for (const line of source.split("\n").filter((l) => /^(import|export) .* from "/.test(l)))
      expect(line).toMatch(/^(import|export) type /);
    const ts = await import("typescript");
    const built = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true, removeComments: true },
    }).outputText;
    expect(built).not.toMatch(/^\s*(import|export .* from)\b|\bimport\(|\brequire\(|typebox/m);
  });
});
