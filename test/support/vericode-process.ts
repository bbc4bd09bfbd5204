import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { keepProcessLog } from "./logs.js";

/** The built CLI (`npm test` builds first). */
export const CLI = join(import.meta.dirname, "..", "..", "dist", "cli", "main.js");

export interface VericodeProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  address: string;
  /** Every line the process wrote so far: its logs (stdout) and anything on stderr. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts `vericode serve --port 0` from the built CLI with exactly `env` (and PATH), once it listens. */
export function serveProcess(env: Record<string, string>, args: string[] = []): Promise<VericodeProcess> {
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk) => (stderr += chunk));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    keepProcessLog("serve", stderr);
    stderr = "";
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vericode did not start: ${stderr}`)), 20_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      stderr += `${line}\n`;
      let entry: { event?: string; address?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (entry.event === "listening" && entry.address !== undefined) {
        clearTimeout(timer);
        resolve({ child, address: entry.address, output: () => stderr, stop });
      }
    });
    child.once("exit", (code) => reject(new Error(`vericode exited with ${code}: ${stderr}`)));
  });
}
