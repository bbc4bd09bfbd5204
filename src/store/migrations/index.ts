import type { Migration, MigrationProvider } from "kysely";
import * as m0001 from "./0001-initial.js";
import * as m0002 from "./0002-protection.js";

/** Every migration, in order, collected in code so that a bundled or installed package finds them all. */
const MIGRATIONS: Record<string, Migration> = {
  "0001-initial": m0001,
  "0002-protection": m0002,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
