import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/** How often the WAL is copied back into the database file. */
const CHECKPOINT_EVERY_MS = 1000;

/**
 * The worker's whole program. It opens the database on a connection of its own and copies the WAL back
 * every CHECKPOINT_EVERY_MS, PASSIVE: without waiting for readers or writers, which carry on meanwhile.
 */
const PROGRAM = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.module);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma("busy_timeout = 100");
const checkpoint = () => { try { db.pragma("wal_checkpoint(PASSIVE)"); } catch {} };
const timer = setInterval(checkpoint, workerData.everyMs);
parentPort.on("message", () => { clearInterval(timer); checkpoint(); db.close(); parentPort.close(); });
`;

/**
 * WAL checkpoints off the service's event loop. SQLite's automatic checkpoint runs inside whichever
 * COMMIT finds the WAL past 1,000 pages, and its fsyncs (up to ~400 ms measured while `vericode purge`
 * ran beside sends) would stop every request of the process; so the service's connection turns it off
 * and this thread checkpoints instead.
 */
export class Checkpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;

  constructor(path: string) {
    const module = createRequire(import.meta.url).resolve("better-sqlite3");
    this.#worker = new Worker(PROGRAM, { eval: true, workerData: { path, module, everyMs: CHECKPOINT_EVERY_MS } });
    this.#exited = new Promise((resolve) => this.#worker.once("exit", () => resolve()));
    // A checkpointer that cannot run leaves the WAL to grow until the next one: nothing is lost.
    this.#worker.on("error", () => {});
    this.#worker.unref();
  }

  /** A last checkpoint, then the thread ends. */
  async close(): Promise<void> {
    // Held until the thread has ended, or a process that is closing would exit before its last checkpoint.
    this.#worker.ref();
    this.#worker.postMessage("close");
    await this.#exited;
  }
}
