import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { missingV8Flags, SERVE_V8_FLAGS } from "../../src/cli/v8-flags.js";
import { TEST_SECRETS } from "../support/service.js";
import { serveProcess } from "../support/vericode-process.js";

const DEFAULTS = SERVE_V8_FLAGS.map(({ flag }) => flag);

/** The pids whose parent is `pid` (Linux's /proc). */
function childrenOf(pid: number): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] === String(pid);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const commandLine = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");

/** The pid the service's `listening` line names: the process that serves. */
function servingPid(output: string): number {
  const line = output.split("\n").find((text) => text.includes('"event":"listening"')) as string;
  return (JSON.parse(line) as { pid: number }).pid;
}

describe("the V8 flags vericode serve adds", () => {
  it("adds each flag that neither node's arguments nor NODE_OPTIONS set", () => {
    expect(DEFAULTS).toEqual(["--max-semi-space-size=4", "--max-old-space-size=512", "--single-threaded-gc"]);
    expect(missingV8Flags([], undefined)).toEqual(DEFAULTS);
    expect(missingV8Flags([], "--max-old-space-size=1024")).toEqual(["--max-semi-space-size=4", "--single-threaded-gc"]);
    expect(missingV8Flags(["--max_semi_space_size=8"], "")).toEqual(["--max-old-space-size=512", "--single-threaded-gc"]);
    expect(missingV8Flags(["--no-single-threaded-gc"], "--max-old-space-size=1024")).toEqual(["--max-semi-space-size=4"]);
  });

  it("adds none once both heap limits are set, nor under a debugger", () => {
    expect(missingV8Flags(["--max-semi-space-size=2"], "--enable-source-maps --max-old-space-size=300")).toEqual([]);
    // --max-heap-size sets both generations.
    expect(missingV8Flags([], "--max-heap-size=256")).toEqual([]);
    expect(missingV8Flags(["--inspect=0"], undefined)).toEqual([]);
    expect(missingV8Flags([], "--inspect-brk")).toEqual([]);
  });
});

describe("vericode serve with its V8 flags", () => {
  let folder: string;
  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), "vericode-heap-"));
  });
  afterAll(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  const env = (name: string) => ({ ...TEST_SECRETS, DATABASE_URL: `sqlite:${join(folder, `${name}.db`)}`, LOG_LEVEL: "info" });

  it("serves from a child process started with the flags, and exits 0 when SIGTERM reaches the parent", async () => {
    const vericode = await serveProcess(env("child"));
    const parent = vericode.child.pid as number;
    const serving = servingPid(vericode.output());
    expect(childrenOf(parent)).toEqual([serving]);
    expect(commandLine(serving)).toEqual(expect.arrayContaining(DEFAULTS));
    expect(commandLine(parent)).not.toEqual(expect.arrayContaining([DEFAULTS[0]]));
    expect((await fetch(`${vericode.address}/healthz`)).status).toBe(200);
    const exited = new Promise<number | null>((resolve) => vericode.child.once("exit", (code) => resolve(code)));
    vericode.child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(vericode.output()).toContain('"event":"shutdown","signal":"SIGTERM"');
    await vericode.stop();
  }, 30_000);

  it("serves in its own process when NODE_OPTIONS sets both heap limits", async () => {
    const vericode = await serveProcess({ ...env("own"), NODE_OPTIONS: "--max-semi-space-size=2 --max-old-space-size=300" });
    expect(servingPid(vericode.output())).toBe(vericode.child.pid);
    expect(childrenOf(vericode.child.pid as number)).toEqual([]);
    await vericode.stop();
  }, 30_000);
});
