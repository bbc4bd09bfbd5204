import { type Config, loadConfig } from "../config.js";
import { SqlStore } from "../store/sql-store.js";

/**
 * The configuration and the database alone, for the commands that need nothing else (`migrate`, `user
 * promote`): they skip loading the channels, limits, tokens and reports of the whole service, half of a
 * command's own start-up (about 0.35 of 0.7 s of CPU, measured).
 */
export function commandStore(): { config: Config; store: SqlStore } {
  const config = loadConfig();
  return { config, store: new SqlStore(config.database) };
}
