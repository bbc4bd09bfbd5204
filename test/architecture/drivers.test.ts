import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { postgresAvailable, postgresDatabase } from "../support/databases.js";
import { TEST_SECRETS } from "../support/service.js";

const CLI = resolve(import.meta.dirname, "../../dist/cli/main.js");
const dir = mkdtempSync(join(tmpdir(), "vericode-drivers-"));
// Loaded before the CLI: on exit, prints how many of pg's modules the process loaded.
const PROBE = join(dir, "probe.cjs");
writeFileSync(
  PROBE,
  `process.on("exit", () => { process.stderr.write("pg modules: " + Object.keys(require.cache).filter((f) => f.includes("/node_modules/pg/")).length + "\\n"); });`,
);

/** Runs `vericode migrate` on a database and answers how many of pg's modules it loaded. */
async function pgModulesLoaded(databaseUrl: string): Promise<number> {
  if (!existsSync(CLI)) throw new Error("dist/cli/main.js is missing: run `npm run build` (npm test does it first)");
  const { stderr } = await promisify(execFile)(process.execPath, ["--require", PROBE, CLI, "migrate"], {
    env: { PATH: process.env.PATH, ...TEST_SECRETS, DATABASE_URL: databaseUrl },
  });
  return Number(/pg modules: (\d+)/.exec(stderr)?.[1] ?? Number.NaN);
}

describe("database drivers", () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a process on SQLite never loads pg; one on PostgreSQL does", async () => {
    expect(await pgModulesLoaded(`sqlite:${join(dir, "drivers.db")}`)).toBe(0);
    if (!(await postgresAvailable())) {
      if (process.env.CI) throw new Error("PostgreSQL is required in CI");
      console.warn("PostgreSQL not reachable: the PostgreSQL half of this test is skipped");
      return;
    }
    const postgres = await postgresDatabase();
    try {
      expect(await pgModulesLoaded(postgres.url)).toBeGreaterThan(0);
    } finally {
      await postgres.drop();
    }
  });
});
