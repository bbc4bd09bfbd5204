import { systemClock } from "../clock.js";
import { VericodeError } from "../errors.js";
import { commandStore } from "./command-store.js";

/** `vericode user promote <login>`: the admin role (for the analytics API and the dashboard). */
export async function runPromote(login: string, options: { role: string }): Promise<void> {
  const { store } = commandStore();
  try {
    // As every command that opens the database: pending migrations first.
    await store.migrate();
    const user = await store.setRole(login, options.role, systemClock.now().getTime());
    if (user === null) throw new VericodeError("not_found", `There is no user ${JSON.stringify(login)} (give a username or an email).`);
    process.stdout.write(
      `${user.username ?? user.email} (${user.id}) now has the role ${options.role}; it applies to tokens issued from now on (sign in again or refresh).\n`,
    );
  } finally {
    await store.close();
  }
}
