import { applyRetention } from "../analytics/retention.js";
import { loadConfig } from "../config.js";
import { buildApp } from "../http/app.js";
import { createVericode, type Vericode } from "../vericode.js";
import { SUPERVISED } from "./v8-flags.js";

/** How often each instance deletes what RETENTION_DAYS no longer keeps. */
const RETENTION_EVERY_MS = 60 * 60 * 1000;

/**
 * The retention job: a first run a minute or so after start (spread so that instances started together
 * do not run at once), then hourly. Several instances running it is harmless: it only deletes what is
 * past the cut-off, in small batches.
 */
function startRetention(vericode: Vericode): () => void {
  const run = async () => {
    try {
      const result = await applyRetention(vericode, vericode.config.retentionDays, vericode.clock.now().getTime());
      vericode.log.info({ event: "retention.purge", ...result, before: result.before.toISOString() }, "retention: old records deleted");
    } catch (error) {
      vericode.log.error({ event: "retention.purge", err: error }, "retention: purge failed; it runs again within the hour");
    }
  };
  let interval: NodeJS.Timeout | undefined;
  const first = setTimeout(
    () => {
      void run();
      interval = setInterval(() => void run(), RETENTION_EVERY_MS);
      interval.unref();
    },
    60_000 + Math.floor(Math.random() * 60_000),
  );
  first.unref();
  return () => {
    clearTimeout(first);
    if (interval !== undefined) clearInterval(interval);
  };
}

/**
 * Listens until SIGINT or SIGTERM, then stops accepting, finishes in-flight requests and closes the database.
 * A worker of `--workers` leaves the migrations and the configuration's warnings to the primary, which ran
 * and logged them once for all.
 */
export async function runServe(options: { port?: number; host?: string; worker?: boolean }): Promise<void> {
  const worker = options.worker === true;
  const config = loadConfig();
  const vericode = await createVericode({ config: worker ? { ...config, warnings: [] } : config, migrate: !worker });
  for (const name of vericode.migrations) vericode.log.info({ event: "migration" }, `applied migration ${name}`);
  const app = await buildApp(vericode);
  const port = options.port ?? vericode.config.port;
  const host = options.host ?? vericode.config.host;
  const stopRetention = startRetention(vericode);
  let closing = false;
  // While closing, each answer closes its connection: a keep-alive client does not hold the shutdown
  // open, and its next request goes to another instance.
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (closing) reply.header("connection", "close");
    done(null, payload);
  });
  const shutdown = async (signal: string): Promise<void> => {
    if (closing) return;
    closing = true;
    vericode.log.info({ event: "shutdown", signal }, "shutting down");
    stopRetention();
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await app.close();
    await vericode.close();
  };
  // `on`, not `once`: the same signal may come twice (systemd signals every process of the unit, and the
  // process that started this one passes its own on: v8-flags.ts); the second is not a kill.
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  if (process.env[SUPERVISED] === "1" && process.channel !== undefined) {
    // The process that started this one for its heap limits (v8-flags.ts) is gone without passing a
    // signal on (SIGKILL): nobody would stop this one any more.
    process.once("disconnect", () => void shutdown("disconnect"));
    // The channel only watches the parent: it does not keep the process alive once the service has closed.
    process.channel.unref();
  }
  const address = await app.listen({ port, host });
  const db = vericode.config.database.kind === "sqlite" ? `SQLite ${vericode.config.database.path}` : "PostgreSQL";
  vericode.log.info(
    { event: "listening", address, database: db, sms: vericode.config.smsProvider },
    `vericode listening on ${address} (${db}, ${vericode.config.smsProvider} SMS provider); ${vericode.config.webDemo ? `demo at ${address}/, ` : ""}API docs at ${address}/docs`,
  );
}
