import { commandService } from "./otp.js";

export async function runMigrate(): Promise<void> {
  const vericode = await commandService({ migrate: false });
  try {
    const ran = await vericode.store.migrate();
    const where = vericode.config.database.kind === "sqlite" ? vericode.config.database.path : "PostgreSQL";
    if (ran.length === 0) process.stdout.write(`Database is up to date (${where}).\n`);
    for (const name of ran) process.stdout.write(`applied ${name}\n`);
  } finally {
    await vericode.close();
  }
}
