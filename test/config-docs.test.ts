import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it, vi } from "vitest";
import { renderEnvExample, renderReadmeTable, withReadmeTable } from "../src/config/docs.js";
import { EnvReader } from "../src/config/env-reader.js";
import { Invalid } from "../src/config/parsers.js";
import { VARIABLES, type Variable } from "../src/config/variables.js";
import { loadConfig } from "../src/config.js";

// `npm run config:docs` runs this file with VERICODE_CONFIG_DOCS=write: it then writes the files instead of comparing.
const WRITE = process.env.VERICODE_CONFIG_DOCS === "write";
const ALL: Variable<unknown>[] = Object.values(VARIABLES);

const DOCS = [
  { file: ".env.example", generate: (): string => renderEnvExample() },
  { file: "README.md", generate: (current: string): string => withReadmeTable(current) },
];

describe("the configuration's documents are generated from src/config/variables.ts", () => {
  for (const { file, generate } of DOCS) {
    it(`${file} is up to date`, () => {
      const url = new URL(`../${file}`, import.meta.url);
      const current = readFileSync(url, "utf8");
      const generated = generate(current);
      if (WRITE) {
        if (generated !== current) writeFileSync(url, generated);
        return;
      }
      expect(current, `${file} has drifted from src/config/variables.ts: run \`npm run config:docs\` and commit the result`).toBe(
        generated,
      );
    });
  }

  it("the README table documents every variable, one row each, with no blank line inside", () => {
    const rows = renderReadmeTable()
      .split("\n")
      .filter((line) => line.startsWith("| `"));
    expect(rows.map((row) => /^\| `(\w+)`/.exec(row)?.[1])).toEqual(ALL.map((v) => v.name));
    const table = renderReadmeTable().split("\n").slice(2, -2);
    expect(table.every((line) => line.startsWith("|"))).toBe(true);
  });

  it("every default and example shown is a value its parser accepts", () => {
    const readsFiles = new Set(["TEMPLATES_DIR", "SMS_PRICES_FILE"]);
    for (const variable of ALL) {
      for (const shown of [variable.default, readsFiles.has(variable.name) ? undefined : variable.example]) {
        if (shown === undefined || shown === "") continue;
        expect(variable.parse(shown, variable.name), `${variable.name}=${shown}`).not.toBeInstanceOf(Invalid);
      }
    }
  });

  it(".env.example, copied to .env as it is, changes nothing: the values it sets are the defaults", () => {
    const env = { JWT_SECRET: "j".repeat(32), OTP_SECRET: "o".repeat(32) };
    const envFile = fileURLToPath(new URL("../.env.example", import.meta.url));
    expect(loadConfig({ env, envFile })).toEqual(loadConfig({ env, envFile: false }));
  });

  it("a secret never has a default or an example", () => {
    for (const variable of ALL.filter((v) => v.secret === true)) {
      expect([variable.name, variable.default, variable.example]).toEqual([variable.name, undefined, undefined]);
    }
  });

  it("loadConfig reads every variable of the table", () => {
    const read = vi.spyOn(EnvReader.prototype, "read");
    const env = Object.fromEntries(ALL.map((v) => [v.name, v.example || v.default || "x"]));
    try {
      loadConfig({ env, envFile: false });
    } catch {
      // Examples such as prices.json do not exist here: only which variables were read matters.
    }
    const names = new Set(read.mock.calls.map(([variable]) => variable.name));
    read.mockRestore();
    expect(ALL.map((v) => v.name).filter((name) => !names.has(name))).toEqual([]);
  });
});
