import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqliteDatabase, type TestDatabase } from "../support/databases.js";
import { startService, type TestService } from "../support/service.js";

describe("the pages the service serves", () => {
  const dbs: TestDatabase[] = [];
  let demo: TestService;
  let noDemo: TestService;

  beforeAll(async () => {
    dbs.push(sqliteDatabase(), sqliteDatabase());
    demo = await startService(dbs[0] as TestDatabase);
    noDemo = await startService(dbs[1] as TestDatabase, { env: { WEB_DEMO: "false" } });
  });
  afterAll(async () => {
    await demo.close();
    await noDemo.close();
    for (const db of dbs) await db.drop();
  });

  it("serves the demo at / with the security headers, and answers 304 to a fresh copy", async () => {
    const page = await demo.app.inject({ method: "GET", url: "/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(page.body).toContain('autocomplete="one-time-code"');
    const again = await demo.app.inject({ method: "GET", url: "/", headers: { "if-none-match": String(page.headers.etag) } });
    expect(again.statusCode).toBe(304);
    for (const [url, type] of [
      ["/app.js", "text/javascript"],
      ["/style.css", "text/css"],
      ["/client.js", "text/javascript"],
      ["/dashboard/", "text/html"],
      ["/dashboard/dashboard.js", "text/javascript"],
      ["/dashboard/chart.umd.min.js", "text/javascript"],
    ]) {
      const response = await demo.app.inject({ method: "GET", url: url as string });
      expect(response.statusCode, url).toBe(200);
      expect(response.headers["content-type"], url).toContain(type as string);
    }
  });

  it("leaves / out with WEB_DEMO=false, and keeps the dashboard", async () => {
    const missing = await noDemo.app.inject({ method: "GET", url: "/" });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: "not_found" });
    expect((await noDemo.app.inject({ method: "GET", url: "/dashboard/" })).statusCode).toBe(200);
    expect((await noDemo.app.inject({ method: "GET", url: "/client.js" })).statusCode).toBe(200);
  });
});
