import type { Migration, MigrationProvider } from "kysely";
import * as m0001 from "./0001-initial.js";
import * as m0002 from "./0002-protection.js";
import * as m0003 from "./0003-fallback.js";
import * as m0004 from "./0004-without-rowid.js";
import * as m0005 from "./0005-users-phone.js";
import * as m0006 from "./0006-report-days.js";
import * as m0007 from "./0007-partial-provider-index.js";
import * as m0008 from "./0008-rate-limit-lim.js";
import * as m0009 from "./0009-mac-key-id.js";
import * as m0010 from "./0010-idempotency-keys.js";
import * as m0011 from "./0011-verify.js";

/** Every migration, in order, collected in code so that a bundled or installed package finds them all. */
const MIGRATIONS: Record<string, Migration> = {
  "0001-initial": m0001,
  "0002-protection": m0002,
  "0003-fallback": m0003,
  "0004-without-rowid": m0004,
  "0005-users-phone": m0005,
  "0006-report-days": m0006,
  "0007-partial-provider-index": m0007,
  "0008-rate-limit-lim": m0008,
  "0009-mac-key-id": m0009,
  "0010-idempotency-keys": m0010,
  "0011-verify": m0011,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => MIGRATIONS,
};
