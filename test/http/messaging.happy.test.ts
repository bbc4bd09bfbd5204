import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS, type TestDatabase } from "../support/databases.js";
import { startService, type TestService } from "../support/service.js";
import { FakeTwilio } from "../support/twilio-server.js";

for (const dialect of DIALECTS) {
  describe(`register → send-otp → verify-otp through Twilio's SDK on ${dialect.name}`, () => {
    const twilio = new FakeTwilio();
    let db: TestDatabase | null;
    let service: TestService;

    beforeAll(async () => {
      db = await dialect.make();
      if (db === null) return;
      await twilio.start();
      service = await startService(db, { env: twilio.env() });
    });
    afterAll(async () => {
      if (db === null) return;
      await service.close();
      await twilio.stop();
      await db.drop();
    });

    it("walks the seed's flow and marks the phone verified", async ({ skip }) => {
      if (db === null) skip();
      const register = await service.app.inject({
        method: "POST",
        url: "/api/v1/auth/register/",
        payload: { username: "Ana", email: "ana@example.com", password: "correct horse battery" },
      });
      expect(register.statusCode).toBe(201);
      const { user, access, refresh } = register.json();
      expect(user).toEqual({
        id: expect.stringMatching(/^usr_/),
        username: "ana",
        email: "ana@example.com",
        phone_number: null,
        phone_verified: false,
      });
      expect(typeof refresh).toBe("string");
      const auth = { authorization: `Bearer ${access}` };

      const send = await service.app.inject({
        method: "POST",
        url: "/api/v1/messaging/send-otp/",
        headers: auth,
        payload: { phone_number: "+50688887777", purpose: "registration" },
      });
      expect(send.statusCode).toBe(200);
      const sent = send.json();
      expect(sent).toEqual({
        success: true,
        id: expect.stringMatching(/^otp_[0-9a-f]{32}$/),
        message: "Code sent.",
        expires_at: expect.any(String),
        resend_after: expect.any(String),
      });
      expect(Date.parse(sent.expires_at) - Date.parse(sent.resend_after)).toBe(570_000);
      const message = twilio.messages.at(-1);
      expect(message).toMatchObject({ to: "+50688887777", from: "+15005550006", validityPeriod: "600" });
      const record = await service.vericode.store.findCode(sent.id);
      expect(record).toMatchObject({ status: "sent", providerMessageId: message?.sid, deliveryStatus: "queued", userId: user.id });

      const verify = await service.app.inject({
        method: "POST",
        url: "/api/v1/messaging/verify-otp", // no trailing slash: answers the same
        headers: auth,
        payload: { phone_number: "+50688887777", otp_code: twilio.lastCodeTo("+50688887777"), purpose: "registration" },
      });
      expect(verify.statusCode).toBe(200);
      expect(verify.json()).toEqual({ success: true, message: "Code verified.", verified_at: expect.any(String) });

      const me = await service.app.inject({ method: "GET", url: "/api/v1/auth/me/", headers: auth });
      expect(me.json()).toEqual({ ...user, phone_number: "+50688887777", phone_verified: true });

      const login = await service.app.inject({
        method: "POST",
        url: "/api/v1/auth/token/",
        payload: { email: "ANA@example.com", password: "correct horse battery" },
      });
      expect(login.statusCode).toBe(200);
      expect(login.json()).toEqual({ access: expect.any(String), refresh: expect.any(String) });
      const refreshed = await service.app.inject({ method: "POST", url: "/api/v1/auth/token/refresh/", payload: { refresh } });
      expect(refreshed.statusCode).toBe(200);
      const again = await service.app.inject({
        method: "GET",
        url: "/api/v1/auth/me",
        headers: { authorization: `Bearer ${refreshed.json().access}` },
      });
      expect(again.json().id).toBe(user.id);
    });

    it("accepts a subject unknown to the database and binds the code to it", async ({ skip }) => {
      if (db === null) skip();
      const headers = { authorization: `Bearer ${service.tokenFor("ext|42")}` };
      const payload = { phone_number: "+34612345678", purpose: "login" };
      expect((await service.app.inject({ method: "POST", url: "/api/v1/messaging/send-otp/", headers, payload })).statusCode).toBe(200);
      const code = twilio.lastCodeTo("+34612345678");
      const other = { authorization: `Bearer ${service.tokenFor("ext|43")}` };
      const wrongUser = await service.app.inject({
        method: "POST",
        url: "/api/v1/messaging/verify-otp/",
        headers: other,
        payload: { ...payload, otp_code: code },
      });
      expect(wrongUser.json()).toMatchObject({ code: "otp_not_found" });
      const right = await service.app.inject({
        method: "POST",
        url: "/api/v1/messaging/verify-otp/",
        headers,
        payload: { ...payload, otp_code: code },
      });
      expect(right.statusCode).toBe(200);
    });

    it("serves health, readiness, the OpenAPI document and its page", async ({ skip }) => {
      if (db === null) skip();
      expect((await service.app.inject("/healthz")).json()).toEqual({ status: "ok" });
      expect((await service.app.inject("/readyz")).json()).toEqual({ status: "ready", database: dialect.name, limiter: "sql" });
      const doc = (await service.app.inject("/openapi.json")).json();
      expect(doc.openapi).toBe("3.1.0");
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining([
          "/api/v1/messaging/send-otp/",
          "/api/v1/messaging/verify-otp/",
          "/api/v1/auth/register/",
          "/api/v1/auth/me/",
        ]),
      );
      const page = await service.app.inject("/docs/");
      expect(page.statusCode).toBe(200);
      expect(page.headers["content-type"]).toContain("text/html");
    });
  });
}
