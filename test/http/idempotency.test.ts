import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/client/index.js";
import { ManualClock } from "../../src/clock.js";
import { DIALECTS, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, startService, type TestService } from "../support/service.js";

const SEND = "/api/v1/messaging/send-otp/";
let n = 0;
const phone = () => `+5068877${String(++n).padStart(4, "0")}`;

/** A channel that takes its time, so that a retry can arrive while the first send is running. */
class SlowChannel extends RecordingChannel {
  delayMs = 0;
  override async send(message: { to: string; body: string; code?: string }) {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    return super.send(message);
  }
}

for (const dialect of DIALECTS) {
  describe(`Idempotency-Key on ${dialect.name}`, () => {
    let db: TestDatabase | null;
    let first: TestService;
    let second: TestService;
    const channel = new SlowChannel();
    const clock = new ManualClock(Date.UTC(2026, 10, 26, 12));

    beforeAll(async () => {
      db = await dialect.make();
      if (db === null) return;
      // Two instances on one database: a key holds across them.
      first = await startService(db, { channel, clock });
      second = await startService(db, { channel, clock });
    });
    afterAll(async () => {
      if (db === null) return;
      await first.close();
      await second.close();
      await db.drop();
    });

    const send = (service: TestService, user: string, body: object, key?: string) =>
      service.app.inject({
        method: "POST",
        url: SEND,
        headers: { authorization: `Bearer ${service.tokenFor(user)}`, ...(key === undefined ? {} : { "idempotency-key": key }) },
        payload: body,
      });

    it("a retry with the same key answers the first answer again, on any instance, and sends nothing twice", async (context) => {
      if (db === null) return context.skip();
      const to = phone();
      const body = { phone_number: to, purpose: "login" };
      const answer = await send(first, "usr_idem", body, "key-1");
      expect(answer.statusCode).toBe(200);
      const again = await send(second, "usr_idem", body, "key-1");
      expect(again.statusCode).toBe(200);
      expect(again.headers["idempotent-replayed"]).toBe("true");
      expect(again.json()).toEqual(answer.json());
      expect(channel.sentTo(to)).toBe(1);
      // The same key from another caller is that caller's own.
      expect((await send(first, "usr_other", body, "key-1")).statusCode).toBe(200);
      expect(channel.sentTo(to)).toBe(2);
    });

    it("the same key with another body is 422 idempotency_key_reused, and nothing is sent", async (context) => {
      if (db === null) return context.skip();
      const to = phone();
      expect((await send(first, "usr_idem2", { phone_number: to, purpose: "login" }, "key-2")).statusCode).toBe(200);
      const other = phone();
      const reused = await send(first, "usr_idem2", { phone_number: other, purpose: "login" }, "key-2");
      expect(reused.statusCode).toBe(422);
      expect(reused.json()).toMatchObject({ code: "idempotency_key_reused" });
      expect(channel.sentTo(other)).toBe(0);
    });

    it("while the first is running the same key is 409 idempotency_key_in_use; once it answered, its answer", async (context) => {
      if (db === null) return context.skip();
      const to = phone();
      const body = { phone_number: to, purpose: "login" };
      channel.delayMs = 400;
      try {
        const running = send(first, "usr_idem3", body, "key-3");
        await new Promise((resolve) => setTimeout(resolve, 100));
        const busy = await send(second, "usr_idem3", body, "key-3");
        expect(busy.statusCode).toBe(409);
        expect(busy.json()).toMatchObject({ code: "idempotency_key_in_use" });
        expect(busy.headers["retry-after"]).toBeDefined();
        expect((await running).statusCode).toBe(200);
      } finally {
        channel.delayMs = 0;
      }
      expect((await send(second, "usr_idem3", body, "key-3")).headers["idempotent-replayed"]).toBe("true");
      expect(channel.sentTo(to)).toBe(1);
    });

    it("a 429 is not kept: the same key runs again once the wait is over", async (context) => {
      if (db === null) return context.skip();
      const to = phone();
      const body = { phone_number: to, purpose: "login" };
      expect((await send(first, "usr_idem4", body)).statusCode).toBe(200);
      const refused = await send(first, "usr_idem4", body, "key-4");
      expect(refused.statusCode).toBe(429);
      clock.advance(31);
      const later = await send(first, "usr_idem4", body, "key-4");
      expect(later.statusCode).toBe(200);
      expect(later.headers["idempotent-replayed"]).toBeUndefined();
      expect(channel.sentTo(to)).toBe(2);
    });

    it("a flow start's key is its client address's: a retry sends nothing twice", async (context) => {
      if (db === null) return context.skip();
      const start = (key: string) =>
        first.app.inject({
          method: "POST",
          url: "/api/v1/auth/password-reset/",
          headers: { "idempotency-key": key },
          payload: { phone_number: phone() },
        });
      const started = await start("key-5");
      expect(started.statusCode).toBe(202);
      const again = await first.app.inject({
        method: "POST",
        url: "/api/v1/auth/password-reset/",
        headers: { "idempotency-key": "key-5" },
        payload: { phone_number: `+5068877${String(n).padStart(4, "0")}` },
      });
      expect(again.statusCode).toBe(202);
      expect(again.headers["idempotent-replayed"]).toBe("true");
    });

    it("a key longer than 255 characters, or with a control character, is 400 validation_error", async (context) => {
      if (db === null) return context.skip();
      for (const key of ["k".repeat(256), "a\u0001b"]) {
        const answer = await send(first, "usr_idem6", { phone_number: phone(), purpose: "login" }, key);
        expect(answer.statusCode).toBe(400);
        expect(answer.json()).toMatchObject({ code: "validation_error" });
      }
    });
  });
}

describe("vericode/client and Idempotency-Key", () => {
  it("sends a key with every send and reuses it when it retries after a network failure", async () => {
    const seen: (string | null)[] = [];
    let calls = 0;
    const fetch = (async (_input: string | URL | Request, init?: RequestInit) => {
      calls += 1;
      seen.push(new Headers(init?.headers).get("idempotency-key"));
      if (calls === 1) throw new TypeError("fetch failed");
      return new Response(JSON.stringify({ success: true, message: "x" }), {
        status: 202,
        headers: { "content-type": "application/json" },
      });
    }) as typeof globalThis.fetch;
    const client = createClient({ baseUrl: "http://vericode.test", fetch });
    await client.startLogin("+50688887777");
    expect(calls).toBe(2);
    expect(seen[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[1]).toBe(seen[0]);
    await client.startLogin("+50688887777", { idempotencyKey: "mine" });
    expect(seen[2]).toBe("mine");
  });
});
