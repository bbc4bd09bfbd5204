import { spawn } from "node:child_process";
import { constants } from "node:os";

/**
 * V8's heap limits `vericode serve` runs under unless the operator sets them (docs/deployment.md, "Memory").
 *
 * - `--max-semi-space-size=4`: the young generation's two halves of 4 MiB each instead of 16 (32 MiB of
 *   resident memory down to 8). A request's garbage dies young either way; what lives through a
 *   collection is the few requests in flight.
 * - `--max-old-space-size=512`: a cap far above what the service holds (about 30 MiB after start, some
 *   20 MiB more with a full phone cache, a few MiB per thousand requests in flight), so a burst or a
 *   report does not reach it. Its use is V8's growing factor: with a cap of 2 GiB or more (V8's default
 *   here is 4 GiB) the old generation may grow to about four times what it holds before it is collected;
 *   below 2 GiB the factor scales down, to about 1.4 at 512 MiB.
 *
 * Measured on the bench's send run (docs/benchmarks.md): peak RSS 155-169 MiB with V8's defaults, about
 * 135 MiB with both.
 */
export const HEAP_FLAGS: readonly (readonly [name: string, value: number])[] = [
  ["--max-semi-space-size", 4],
  ["--max-old-space-size", 512],
];

/** Flags that set a limit of HEAP_FLAGS too: given one of them, vericode leaves that limit to it. */
const ALSO_SETS: Readonly<Record<string, readonly string[]>> = {
  "--max-semi-space-size": ["--max-heap-size", "--max-young-generation-size"],
  "--max-old-space-size": ["--max-heap-size"],
};

/** `--max_old_space_size=512` and `--max-old-space-size 512` both name `--max-old-space-size`. */
function flagName(argument: string): string {
  return (argument.split("=")[0] as string).replaceAll("_", "-");
}

/**
 * The heap flags this process still needs: those of HEAP_FLAGS that neither node's own arguments
 * (`node --max-old-space-size=… vericode serve`) nor NODE_OPTIONS set. Empty under a debugger
 * (`--inspect`…), where a second process would lose the session.
 */
export function missingHeapFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? "").split(/\s+/)].filter((argument) => argument.startsWith("--")).map(flagName);
  if (given.some((name) => name.startsWith("--inspect"))) return [];
  return HEAP_FLAGS.filter(([name]) => !given.includes(name) && !(ALSO_SETS[name] ?? []).some((other) => given.includes(other))).map(
    ([name, value]) => `${name}=${value}`,
  );
}

/**
 * Signals the supervising process hands on: those the service acts on, and SIGUSR2, which Node's
 * diagnostics use (`--report-on-signal`, `--heapsnapshot-signal=SIGUSR2`) and which ends a process without
 * a handler, as it ended the service before it had a supervisor.
 */
const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGUSR2"] as const;

/**
 * Runs this same command again in a child Node.js process with `flags` added (V8 reads its heap limits
 * when the process starts, so they cannot be set from inside it), and stays beside it: the signals above
 * are passed on, and this process ends as the child did (its exit code, or 128 + its signal's number).
 * The child's stdin, stdout and stderr are this process's; it leads a process group of its own, so that
 * a terminal's Ctrl-C reaches it once (from here), not twice. When this process dies without passing
 * anything on (SIGKILL), the child's IPC channel closes and it shuts down as on SIGTERM (serve.ts).
 */
export function serveWithHeapLimits(flags: readonly string[]): Promise<void> {
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

/** Set in the child's environment: the service runs under serveWithHeapLimits. */
export const SUPERVISED = "VERICODE_SUPERVISED";
