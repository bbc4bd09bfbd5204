import cluster, { type Worker } from "node:cluster";
import { loadConfig } from "../config.js";
import { createLogger } from "../logger.js";
import { createVericode } from "../vericode.js";

/** A worker that dies this many times within a minute is not started again: the primary exits 1. */
const MAX_RESTARTS_PER_MINUTE = 5;

/**
 * `vericode serve --workers N`: the primary runs the migrations once, then forks N workers that share the
 * listening socket (node:cluster), each with `v8Flags` (v8-flags.ts: those node and NODE_OPTIONS did not set). Every limit, budget and code lives in the database (and Redis), so the
 * workers agree without talking to each other. SIGTERM or SIGINT stops them all gracefully; a worker that
 * crashes is replaced.
 */
export async function runPrimary(workers: number, args: string[], v8Flags: readonly string[] = []): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  const vericode = await createVericode({ config, logger: log });
  for (const name of vericode.migrations) log.info({ event: "migration" }, `applied migration ${name}`);
  await vericode.close();

  // The workers serve, so they run with serve's V8 flags (v8-flags.ts); the primary only watches them.
  cluster.setupPrimary({ args, silent: false, execArgv: [...process.execArgv, ...v8Flags] });
  let stopping = false;
  const restarts: number[] = [];
  const fork = (): Worker => cluster.fork({ VERICODE_WORKER: "1" });
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && (restarts[0] as number) < now - 60_000) restarts.shift();
    if (restarts.length > MAX_RESTARTS_PER_MINUTE) {
      log.fatal({ event: "workers.crash_loop" }, `workers keep dying (${restarts.length} in a minute): stopping`);
      void stop(1);
      return;
    }
    log.error({ event: "worker.exit", pid: worker.process.pid, code, signal }, "a worker died: starting another");
    fork();
  });

  const stop = async (exitCode: number): Promise<void> => {
    stopping = true;
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    await Promise.all(
      alive.map(
        (worker) =>
          new Promise<void>((resolve) => {
            worker.once("exit", () => resolve());
            worker.process.kill("SIGTERM");
          }),
      ),
    );
    process.exitCode = exitCode;
  };
  process.once("SIGINT", () => void stop(0));
  process.once("SIGTERM", () => void stop(0));
  for (let i = 0; i < workers; i++) fork();
  log.info({ event: "workers", workers }, `vericode primary ${process.pid} started ${workers} workers`);
}
