import { spawn } from "node:child_process";
import { constants } from "node:os";

/**
 * The V8 flags `vericode serve` runs the service with unless the operator sets them (docs/deployment.md,
 * "Memory and V8's flags"). Measured on `npm run bench`'s SQLite runs (docs/benchmarks.md, "Memory"):
 *
 * - `--max-semi-space-size=4`: the young generation's two halves of 4 MiB each instead of 16 (32 MiB of
 *   resident memory down to 8). A request's garbage dies young either way; what a scavenge copies is the
 *   few requests in flight, but scavenges come four times as often.
 * - `--max-old-space-size=512`: a cap far above what the service holds (about 30 MiB after start, 11 MiB
 *   more with a full phone cache, a few MiB per thousand requests in flight), so that a burst or a report
 *   does not reach it. Its use is V8's growing factor: with a cap of 2 GiB or more (V8's default here is
 *   4 GiB) the old generation may grow to about four times what it holds before it is collected; below
 *   2 GiB the factor scales down, to about 1.4 at 512 MiB.
 * - `--single-threaded-gc`: the collector's work on the service's own thread, none on helper threads. On a
 *   machine whose cores are all busy (one process per core, `--workers N`) the helpers only take time from
 *   the requests: measured, about 15 µs less CPU per verify with the 4 MiB semi-space.
 *
 * Together: peak RSS during the bench's sends 155-160 MiB -> about 130-145 MiB (same code, 10 s runs).
 */
export const SERVE_V8_FLAGS: readonly { readonly flag: string; readonly also: readonly string[]; readonly limit: boolean }[] = [
  { flag: "--max-semi-space-size=4", also: ["--max-heap-size", "--max-young-generation-size"], limit: true },
  { flag: "--max-old-space-size=512", also: ["--max-heap-size"], limit: true },
  { flag: "--single-threaded-gc", also: ["--no-single-threaded-gc", "--single-threaded"], limit: false },
];

/** `--max_old_space_size=512` and `--max-old-space-size 512` both name `--max-old-space-size`. */
function flagName(argument: string): string {
  return (argument.split("=")[0] as string).replaceAll("_", "-");
}

/**
 * The flags of SERVE_V8_FLAGS this process still needs: those that neither node's own arguments
 * (`node --max-old-space-size=… vericode serve`) nor NODE_OPTIONS set, nor a flag that sets the same
 * (`--max-heap-size` sets both generations; `--no-single-threaded-gc` declines the third). None once
 * both heap limits are set (the operator has chosen: NODE_OPTIONS cannot carry the GC flag), and none
 * under a debugger (`--inspect`…), where a second process would lose the session.
 */
export function missingV8Flags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? "").split(/\s+/)].filter((argument) => argument.startsWith("--")).map(flagName);
  if (given.some((name) => name.startsWith("--inspect"))) return [];
  const missing = SERVE_V8_FLAGS.filter(({ flag, also }) => ![flagName(flag), ...also].some((name) => given.includes(name)));
  return missing.some(({ limit }) => limit) ? missing.map(({ flag }) => flag) : [];
}

/**
 * Signals the supervising process hands on: those the service acts on, and SIGUSR2, which Node's
 * diagnostics use (`--report-on-signal`, `--heapsnapshot-signal=SIGUSR2`) and which ends a process without
 * a handler, as it ended the service before it had a supervisor.
 */
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGUSR2"] as const;

/**
 * Runs this same command again in a child Node.js process with `flags` added (V8 reads its heap limits
 * when the process starts: set from inside with v8.setFlagsFromString, they were measured to change nothing), and stays beside it: the signals above
 * are passed on, and this process ends as the child did (its exit code, or 128 + its signal's number).
 * The child's stdin, stdout and stderr are this process's; it leads a process group of its own, so that
 * a terminal's Ctrl-C reaches it once (from here), not twice. When this process dies without passing
 * anything on (SIGKILL), the child's IPC channel closes and it shuts down as on SIGTERM (serve.ts).
 */
export function serveWithV8Flags(flags: readonly string[]): Promise<void> {
  const child = spawn(process.execPath, [...process.execArgv, ...flags, ...process.argv.slice(1)], {
    stdio: ["inherit", "inherit", "inherit", "ipc"],
    // A process group of its own: a terminal's Ctrl-C reaches this process only, which passes it on once.
    detached: true,
    env: { ...process.env, [SUPERVISED]: "1" },
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of FORWARDED) process.on(signal, forward);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      for (const name of FORWARDED) process.off(name, forward);
      process.exitCode = signal === null ? (code ?? 1) : 128 + (constants.signals[signal] ?? 0);
      resolve();
    });
  });
}

/** Set in the child's environment: the service runs under serveWithV8Flags. */
export const SUPERVISED = "VERICODE_SUPERVISED";
