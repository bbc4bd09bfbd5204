import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import twilio from "twilio";
import type { TestDatabase } from "./databases.js";
import { startService, type TestService } from "./service.js";
import type { FakeTwilio } from "./twilio-server.js";

/** The /v2 API's credentials in the tests. */
export const VERIFY_ACCOUNT_SID = `AC${"a1".repeat(16)}`;
export const VERIFY_AUTH_TOKEN = "verify-auth-token-0123456789abcdef0123";
export const VERIFY_API_KEY = `SK${"b2".repeat(16)}`;
export const VERIFY_API_SECRET = "verify-api-secret-0123456789abcdef0123";

/** A port nobody listens on now, so PUBLIC_BASE_URL can name it before the service starts. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export interface VerifyTestService extends TestService {
  url: string;
  /** The official SDK, unmodified, with only its Verify base URL and credentials changed. */
  client(accountSid?: string, authToken?: string, options?: { accountSid?: string }): twilio.Twilio;
}

/** vericode listening on a real port with /v2 on, its SMS going to our Twilio-compatible server. */
export async function startVerifyService(db: TestDatabase, fake: FakeTwilio, env: Record<string, string> = {}): Promise<VerifyTestService> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const service = await startService(db, {
    env: {
      ...fake.env(),
      PUBLIC_BASE_URL: url,
      VERIFY_ACCOUNT_SID,
      VERIFY_AUTH_TOKEN,
      VERIFY_API_KEYS: `${VERIFY_API_KEY}:${VERIFY_API_SECRET}`,
      ...env,
    },
  });
  await service.app.listen({ port, host: "127.0.0.1" });
  return {
    ...service,
    url,
    client(user = VERIFY_ACCOUNT_SID, password = VERIFY_AUTH_TOKEN, options = {}) {
      const client = twilio(user, password, options);
      client.verify.baseUrl = url;
      return client;
    },
  };
}

/** The code in the newest message our Twilio server received for `to`. */
export function lastCode(fake: FakeTwilio, to: string): string {
  const message = fake.messages.filter((m) => m.to === to).at(-1);
  const code = /(\d{4,10})/.exec(message?.body ?? "")?.[1];
  if (code === undefined) throw new Error(`no code was sent to ${to}`);
  return code;
}

/** A number in Costa Rica's mobile range nobody else in the run uses. */
export function mobile(): string {
  return `+50688${String(randomBytes(4).readUInt32BE(0) % 1_000_000).padStart(6, "0")}`;
}
