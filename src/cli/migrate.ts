import { commandStore } from "./command-store.js";

export async function runMigrate(): Promise<void> {
  const { config, store } = commandStore();
  try {
    const ran = await store.migrate();
    const where = config.database.kind === "sqlite" ? config.database.path : "PostgreSQL";
    if (ran.length === 0) process.stdout.write(`Database is up to date (${where}).\n`);
    for (const name of ran) process.stdout.write(`applied ${name}\n`);
  } finally {
    await store.close();
  }
}
