import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { startService, type TestService } from "../support/service.js";
import { FakeTwilio } from "../support/twilio-server.js";

const SEND = "/api/v1/messaging/send-otp/";

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("delivery status: Twilio's signed callbacks and the record's state", () => {
  const twilio = new FakeTwilio();
  let db: TestDatabase;
  let service: TestService;
  let base: string;
  const owner = { authorization: "" };

  beforeAll(async () => {
    db = sqliteDatabase();
    await twilio.start();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    service = await startService(db, { env: { ...twilio.env(), PUBLIC_BASE_URL: base } });
    await service.app.listen({ port, host: "127.0.0.1" });
    owner.authorization = `Bearer ${service.tokenFor("usr_owner")}`;
  });
  afterAll(async () => {
    await service.close();
    await twilio.stop();
    await db.drop();
  });

  async function send(phone: string): Promise<{ id: string; sid: string }> {
    const response = await service.app.inject({
      method: "POST",
      url: SEND,
      headers: owner,
      payload: { phone_number: phone, purpose: "login" },
    });
    expect(response.statusCode).toBe(200);
    const message = twilio.messages.at(-1);
    if (message === undefined) throw new Error("nothing reached Twilio");
    return { id: response.json().id, sid: message.sid };
  }
  const state = async (id: string, headers = owner) => service.app.inject({ method: "GET", url: `/api/v1/messaging/otp/${id}/`, headers });

  it("every message asks Twilio for callbacks at PUBLIC_BASE_URL", async () => {
    await send("+50683330003");
    expect(twilio.messages.at(-1)?.statusCallback).toBe(`${base}/api/v1/messaging/twilio/status/`);
  });

  it("records signed callbacks; a status never goes backwards and a replay changes nothing", async () => {
    const { id, sid } = await send("+50684440004");
    expect((await state(id)).json()).toMatchObject({ id, status: "sent", delivery_status: "queued", provider_message_id: sid });
    expect((await twilio.callback(sid, "sent")).status).toBe(204);
    expect((await state(id)).json()).toMatchObject({ delivery_status: "sent" });
    expect((await twilio.callback(sid, "delivered")).status).toBe(204);
    // Late and repeated callbacks.
    expect((await twilio.callback(sid, "sent")).status).toBe(204);
    expect((await twilio.callback(sid, "delivered")).status).toBe(204);
    expect((await twilio.callback(sid, "undelivered", { errorCode: "30003" })).status).toBe(204);
    expect((await state(id)).json()).toMatchObject({ delivery_status: "delivered", provider_error_code: null });
    expect((await twilio.callback(sid, "read")).status).toBe(204);
    expect((await state(id)).json()).toMatchObject({ delivery_status: "read" });
  });

  it("an undelivered message keeps Twilio's error code", async () => {
    const { id, sid } = await send("+50685550005");
    await twilio.callback(sid, "sent");
    await twilio.callback(sid, "undelivered", { errorCode: "30005" });
    expect((await state(id)).json()).toMatchObject({ delivery_status: "undelivered", provider_error_code: "30005" });
  });

  it("refuses an unsigned or forged callback with 403 and changes nothing", async () => {
    const { id, sid } = await send("+50686660006");
    const forged = await twilio.callback(sid, "delivered", { signWith: "not-the-auth-token-0123456789abcdef" });
    expect(forged.status).toBe(403);
    expect(JSON.parse(forged.body)).toMatchObject({ code: "forbidden", success: false });
    expect((await twilio.callback(sid, "delivered", { signWith: null })).status).toBe(403);
    expect((await state(id)).json()).toMatchObject({ delivery_status: "queued" });
    // A signature over other parameters than those received is forged too.
    const tampered = await fetch(`${base}/api/v1/messaging/twilio/status/`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": "c2lnbmF0dXJl" },
      body: new URLSearchParams({ AccountSid: twilio.accountSid, MessageSid: sid, MessageStatus: "delivered" }).toString(),
    });
    expect(tampered.status).toBe(403);
  });

  it("the record is its owner's only: anyone else, or an unknown id, gets 404", async () => {
    const { id } = await send("+50687770007");
    const stranger = { authorization: `Bearer ${service.tokenFor("usr_stranger")}` };
    expect((await state(id, stranger)).json()).toMatchObject({ code: "not_found" });
    expect((await state(`otp_${"0".repeat(32)}`)).statusCode).toBe(404);
    expect((await state("nonsense")).statusCode).toBe(400);
    expect((await service.app.inject({ method: "GET", url: `/api/v1/messaging/otp/${id}/` })).statusCode).toBe(401);
  });
});
