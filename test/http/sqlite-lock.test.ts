import BetterSqlite3 from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { RecordingChannel, startService, type TestService } from "../support/service.js";

const SEND = "/api/v1/messaging/send-otp/";

/**
 * Another process (a backup, `vericode purge`) holds SQLite's write lock: the service must keep answering
 * while its writes wait, say it is not ready, and fail a write that waited too long with 503.
 */
describe("SQLite locked by another process", () => {
  let db: TestDatabase;
  let service: TestService;
  let other: BetterSqlite3.Database;
  const channel = new RecordingChannel();

  beforeEach(async () => {
    db = sqliteDatabase();
    service = await startService(db, { channel });
    other = new BetterSqlite3(db.url.slice("sqlite:".length));
  });
  afterEach(async () => {
    if (other.inTransaction) other.exec("ROLLBACK");
    other.close();
    await service.close();
    await db.drop();
  });

  const send = (phone: string) =>
    service.app.inject({
      method: "POST",
      url: SEND,
      headers: { authorization: `Bearer ${service.tokenFor("usr_lock")}` },
      payload: { phone_number: phone, purpose: "login" },
    });

  it("keeps answering /healthz while a send waits for the lock, answers /readyz 503, then sends once the lock is gone", async () => {
    other.exec("BEGIN IMMEDIATE");
    const sending = send("+50688887101");
    let settled = false;
    void sending.then(() => {
      settled = true;
    });
    for (let i = 0; i < 5; i++) {
      // Each answer comes at once: the event loop is not held by the wait for the lock.
      expect((await service.app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const ready = await service.app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ code: "service_unavailable" });
    expect(settled).toBe(false);
    other.exec("COMMIT");
    const sent = await sending;
    expect(sent.statusCode).toBe(200);
    expect(channel.sentTo("+50688887101")).toBe(1);
    expect((await service.app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
  });

  it("a write that waits past the deadline answers 503 service_unavailable with Retry-After, and sends nothing", async () => {
    other.exec("BEGIN IMMEDIATE");
    const refused = await send("+50688887102");
    expect(refused.statusCode).toBe(503);
    expect(refused.headers["retry-after"]).toBeDefined();
    expect(refused.json()).toMatchObject({ code: "service_unavailable" });
    expect(refused.body).not.toMatch(/SQLITE|locked by another/);
    expect(channel.sentTo("+50688887102")).toBe(0);
    other.exec("ROLLBACK");
    expect((await send("+50688887102")).statusCode).toBe(200);
  }, 20_000);
});
