import { Writable } from "node:stream";
import pino from "pino";
import { expect, it } from "vitest";
import { Accounts } from "../src/accounts/accounts.js";
import type { TokenService } from "../src/accounts/tokens.js";
import { loggerOptions } from "../src/logger.js";
import type { OtpService } from "../src/otp/otp-service.js";
import type { Store, UserRecord } from "../src/store/store.js";

it("a flow's code that was not sent is logged with its error code, not redacted", async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const log = pino(loggerOptions("info"), sink);
  const user = { id: "usr_flow", phoneVerified: true } as UserRecord;
  let sent!: () => void;
  const attempted = new Promise<void>((resolve) => {
    sent = resolve;
  });
  const otp = {
    sendOtp: async () => {
      setImmediate(sent);
      return { ok: false, code: "rate_limited", message: "Too many requests.", status: 429 };
    },
  } as unknown as OtpService;
  const accounts = new Accounts({
    store: { findUserByVerifiedPhone: async () => user } as unknown as Store,
    tokens: {} as TokenService,
    clock: { now: () => new Date() },
    defaultCountry: null,
    otp,
    log,
  });
  await accounts.startFlow("login", "+50688887777");
  await attempted;
  const line = lines.find((l) => l.event === "flow.send");
  expect(line).toMatchObject({ event: "flow.send", purpose: "login", errorCode: "rate_limited" });
  expect(line).not.toHaveProperty("code");
});
