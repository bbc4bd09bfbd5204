import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { Writable } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { createLogger, loggerOptions, redactSecrets, TurnWriter } from "../src/logger.js";

/** A logger with production's options whose lines are kept, parsed. */
function capture(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { log: pino(loggerOptions("debug"), sink), lines };
}

describe("log redaction", () => {
  it("hides codes, passwords and tokens at the top of a line", () => {
    const { log, lines } = capture();
    log.info(
      { otp_code: "123456", code: "654321", password: "p4ss", new_password: "n3w", access: "a.b.c", refresh: "r.s.t", token: "t" },
      "x",
    );
    expect(lines[0]).toMatchObject({
      otp_code: "[redacted]",
      code: "[redacted]",
      password: "[redacted]",
      new_password: "[redacted]",
      access: "[redacted]",
      refresh: "[redacted]",
      token: "[redacted]",
      msg: "x",
    });
  });

  it("hides them one level down, and the request's secret headers", () => {
    const { log, lines } = capture();
    log.info({
      body: { otp_code: "123456", phone_number: "+50688887777", password: "p4ss", token: "t", access: "a", refresh: "r" },
      req: { method: "POST", headers: { authorization: "Bearer x.y.z", cookie: "s=1", "x-twilio-signature": "sig", accept: "*/*" } },
    });
    expect(lines[0]?.body).toEqual({
      otp_code: "[redacted]",
      phone_number: "+50688887777",
      password: "[redacted]",
      token: "[redacted]",
      access: "[redacted]",
      refresh: "[redacted]",
    });
    expect(lines[0]?.req).toEqual({
      method: "POST",
      headers: { authorization: "[redacted]", cookie: "[redacted]", "x-twilio-signature": "[redacted]", accept: "*/*" },
    });
  });

  it("an error code is logged as `errorCode`, as written; `code` may be a one-time code and is hidden", () => {
    const { log, lines } = capture();
    log.warn({ event: "otp.refused", errorCode: "rate_limited" }, "refused");
    log.warn({ code: "123456" }, "sent");
    log.child({ errorCode: "otp_invalid" }).info({ body: { errorCode: "otp_expired" } }, "child");
    expect(lines[0]).toMatchObject({ event: "otp.refused", errorCode: "rate_limited" });
    expect(lines[1]).toMatchObject({ code: "[redacted]" });
    expect(lines[2]).toMatchObject({ errorCode: "otp_invalid", body: { errorCode: "otp_expired" } });
  });

  it("a nested `code` is a problem's code and stays; other headers than the request's are not touched", () => {
    const { log, lines } = capture();
    log.warn({ problem: { code: "otp_invalid" }, res: { headers: { authorization: "kept" } } }, "refused");
    expect(lines[0]).toMatchObject({ problem: { code: "otp_invalid" }, res: { headers: { authorization: "kept" } } });
  });

  it("an error keeps its class, message and stack, without its secret fields", () => {
    const { log, lines } = capture();
    const error = Object.assign(new TypeError("bad token"), { token: "t.o.k", status: 401 });
    log.error({ err: error }, "failed");
    const logged = lines[0]?.err as Record<string, unknown>;
    expect(logged).toMatchObject({ type: "TypeError", message: "bad token", token: "[redacted]", status: 401 });
    expect(String(logged.stack)).toContain("TypeError: bad token");
    // The error itself is left as it was.
    expect(error.token).toBe("t.o.k");
  });

  it("hides secrets a child logger is bound to", () => {
    const { log, lines } = capture();
    log.child({ token: "t.o.k", reqId: "r1" }).info("child");
    expect(lines[0]).toMatchObject({ token: "[redacted]", reqId: "r1", msg: "child" });
  });

  it("copies nothing when there is nothing to hide, and never changes what it was given", () => {
    const clean = { event: "otp.send", to: "********7777", nested: { id: "otp_1" } };
    expect(redactSecrets(clean)).toBe(clean);
    const given = { event: "x", body: { otp_code: "123456" } };
    const scrubbed = redactSecrets(given);
    expect(scrubbed).toEqual({ event: "x", body: { otp_code: "[redacted]" } });
    expect(given.body.otp_code).toBe("123456");
  });

  it("however many loggers a process makes, one 'exit' listener flushes them all", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on("warning", onWarning);
    try {
      const before = process.listenerCount("exit");
      createLogger("info");
      // The first logger may add two: the writers' one, and the one pino shares among its destinations.
      const afterOne = process.listenerCount("exit");
      expect(afterOne).toBeLessThanOrEqual(before + 2);
      const loggers = Array.from({ length: 19 }, () => createLogger("info"));
      expect(loggers).toHaveLength(19);
      expect(process.listenerCount("exit")).toBe(afterOne);
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((warning) => warning.name === "MaxListenersExceededWarning")).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("a logger dropped is collected with its destination: the exit hook holds neither", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const made = (): WeakRef<object> => {
      const destination = { write: () => true, flush: () => {}, flushSync: () => {} };
      const writer = new TurnWriter(destination, destination);
      writer.write("line\n");
      writer.flushSync();
      return new WeakRef(destination);
    };
    const destination = made();
    // A WeakRef's target stays alive until the turn that made it ends.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(destination.deref()).toBeUndefined();
  });

  it("the service's logger writes every line, those of the last turn too, when the process exits at once", () => {
    // The built logger (npm test builds first), as `vericode serve` uses it: lines reach the file
    // descriptor a turn of the event loop at a time, and whatever waits is written on exit.
    const logger = join(import.meta.dirname, "..", "dist", "logger.js");
    const script = `import(${JSON.stringify(logger)}).then(({ createLogger }) => {
      const log = createLogger("info");
      for (let i = 0; i < 2000; i++) log.info({ i, token: "t.o.k" }, "line");
      log.error({ event: "last" }, "last words");
      process.exit(3);
    });`;
    let out = "";
    try {
      execFileSync(process.execPath, ["-e", script], { encoding: "utf8" });
    } catch (error) {
      expect((error as { status: number }).status).toBe(3);
      out = (error as { stdout: string }).stdout;
    }
    const lines = out
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(2001);
    expect(lines.slice(0, 2000).map((line) => line.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(lines.every((line) => line.token === undefined || line.token === "[redacted]")).toBe(true);
    expect(lines[2000]).toMatchObject({ event: "last", msg: "last words" });
  });
});
