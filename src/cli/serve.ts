import { buildApp } from "../http/app.js";
import { createVericode } from "../vericode.js";

/** Listens until SIGINT or SIGTERM, then stops accepting, finishes in-flight requests and closes the database. */
export async function runServe(options: { port?: number; host?: string; migrate?: boolean }): Promise<void> {
  const vericode = await createVericode({ migrate: options.migrate !== false });
  for (const name of vericode.migrations) vericode.log.info({ event: "migration" }, `applied migration ${name}`);
  const app = await buildApp(vericode);
  const port = options.port ?? vericode.config.port;
  const host = options.host ?? vericode.config.host;
  let closing = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (closing) return;
    closing = true;
    vericode.log.info({ event: "shutdown", signal }, "shutting down");
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await app.close();
    await vericode.close();
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  const address = await app.listen({ port, host });
  const db = vericode.config.database.kind === "sqlite" ? `SQLite ${vericode.config.database.path}` : "PostgreSQL";
  vericode.log.info(
    { event: "listening", address, database: db, sms: vericode.config.smsProvider },
    `vericode listening on ${address} (${db}, ${vericode.config.smsProvider} SMS provider); ${vericode.config.webDemo ? `demo at ${address}/, ` : ""}API docs at ${address}/docs`,
  );
}
