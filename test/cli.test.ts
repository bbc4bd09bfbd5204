import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { SqlStore } from "../src/store/sql-store.js";
import { insertDataSet } from "./analytics/data.js";
import { openRaw } from "./support/databases.js";
import { keepProcessLog } from "./support/logs.js";
import { TEST_SECRETS } from "./support/service.js";

const run = promisify(execFile);
const CLI = join(import.meta.dirname, "..", "dist", "cli", "main.js");

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function vericode(args: string[], env: Record<string, string>): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? "", ...env } });
    keepProcessLog("cli", stderr);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    keepProcessLog("cli", failed.stderr);
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/**
 * The rows of the table whose first heading is `first`, each as heading → cell. Cells are two or more
 * spaces apart; an hour (`2026-11-01 01`) holds one.
 */
function readTable(text: string, first: string): Record<string, string>[] {
  const lines = text.split("\n");
  const start = lines.findIndex((line) => line.split(/\s{2,}/)[0]?.trim() === first);
  if (start === -1) throw new Error(`no table headed ${first} in:\n${text}`);
  const head = (lines[start] as string).trim().split(/\s{2,}/);
  const rows: Record<string, string>[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === "") break;
    const cells = line.trim().split(/\s{2,}/);
    expect(cells).toHaveLength(head.length);
    rows.push(Object.fromEntries(head.map((h, i) => [h, cells[i] as string])));
  }
  return rows;
}

describe("the vericode CLI", () => {
  let env: Record<string, string>;

  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error("dist/cli/main.js is missing: run `npm run build` (npm test does it first)");
    const dir = mkdtempSync(join(tmpdir(), "vericode-cli-"));
    env = { ...TEST_SECRETS, DATABASE_URL: `sqlite:${join(dir, "cli.db")}`, OTP_RESEND_COOLDOWN_SECONDS: "0" };
  });

  it("prints help for every command", async () => {
    const commands = ["serve", "migrate", "send", "verify", "budget", "try", "report", "user", "purge"];
    const outcomes = await Promise.all(commands.map((command) => vericode([command, "--help"], env)));
    for (const [i, outcome] of outcomes.entries()) {
      expect(outcome.code).toBe(0);
      expect(outcome.stdout).toContain(`Usage: vericode ${commands[i]}`);
    }
  }, 60_000);

  it("migrate prints what ran, then that the database is up to date", async () => {
    const first = await vericode(["migrate"], env);
    expect(first).toMatchObject({
      code: 0,
      stdout:
        "applied 0001-initial\napplied 0002-protection\napplied 0003-fallback\napplied 0004-without-rowid\napplied 0005-users-phone\napplied 0006-report-days\napplied 0007-partial-provider-index\napplied 0008-rate-limit-lim\napplied 0009-mac-key-id\napplied 0010-idempotency-keys\napplied 0011-verify\n",
    });
    const second = await vericode(["migrate"], env);
    expect(second.stdout).toMatch(/^Database is up to date/);
  });

  it("send prints the SMS to the log (console provider) and verify accepts the code once", async () => {
    const sent = await vericode(["send", "+50688887777", "--purpose", "login", "--user", "usr_cli"], env);
    expect(sent.code).toBe(0);
    expect(sent.stdout).toMatch(/Code sent to \+50688887777 \(otp_[0-9a-f]{32}\)/);
    expect(sent.stdout.split("\n")).toHaveLength(2);
    const code = /"text":"(\d{6}) es tu código de acceso/.exec(sent.stderr)?.[1];
    expect(code).toBeDefined();
    // Not a code at all: refused as the API refuses it, before a try is counted (4 remain after the wrong one below).
    const letters = await vericode(["verify", "+50688887777", "12ab", "--purpose", "login", "--user", "usr_cli"], env);
    expect(letters).toMatchObject({
      code: 1,
      stderr: "vericode: validation_error: The code is not valid. otp_code: must be 4 to 10 digits.\n",
    });
    const wrong = await vericode(
      ["verify", "+50688887777", code === "000000" ? "000001" : "000000", "--purpose", "login", "--user", "usr_cli"],
      env,
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trimEnd().split("\n").at(-1)).toBe("vericode: otp_invalid: The code is not valid. 4 attempts remain.");
    const verified = await vericode(["verify", "+50688887777", code ?? "", "--purpose", "login", "--user", "usr_cli"], env);
    expect(verified).toMatchObject({ code: 0, stdout: "Verified: the code for +50688887777 is correct.\n" });
    const again = await vericode(["verify", "+50688887777", code ?? "", "--purpose", "login", "--user", "usr_cli"], env);
    expect(again.code).toBe(1);
  });

  it("try sends a code, takes it at the prompt (a wrong one first) and verifies it", async () => {
    const child = spawn(process.execPath, [CLI, "try", "+50684440004", "--purpose", "login"], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    const code = await new Promise<string>((resolve) => {
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
        const match = /"text":"(\d{6}) /.exec(stderr);
        if (match?.[1] !== undefined) resolve(match[1]);
      });
    });
    child.stdin.write("abc\n");
    child.stdin.write(`${code === "000000" ? "000001" : "000000"}\n`);
    child.stdin.write(`${code}\n`);
    const exit = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(exit).toBe(0);
    expect(stdout).toBe("Verified: +50684440004 received the code.\n");
    expect(stderr).toContain("Code: The code is not valid. otp_code: must be 4 to 10 digits. No try was counted.\nCode: ");
    // `abc` spent nothing: the wrong code after it is the first try counted.
    expect(stderr).toContain("The code is not valid. 4 attempts remain.");
  });

  it("checks a code's format before anything else, as verify-otp does: letters are not otp_not_found", async () => {
    const letters = await vericode(["verify", "+50688887001", "12ab", "--purpose", "login"], env);
    expect(letters).toMatchObject({ code: 1, stdout: "" });
    expect(letters.stderr).toBe("vericode: validation_error: The code is not valid. otp_code: must be 4 to 10 digits.\n");
    for (const code of ["123", "12345678901", "１２３４", " 1234", ""]) {
      expect((await vericode(["verify", "+50688887001", code, "--purpose", "login"], env)).stderr).toMatch(/^vericode: validation_error: /);
    }
    // The API's bounds: 4 and 10 digits are codes (and, none being pending here, not found).
    for (const code of ["1234", "1234567890"]) {
      expect((await vericode(["verify", "+50688887001", code, "--purpose", "login"], env)).stderr).toMatch(/vericode: otp_not_found: /);
    }
  });

  it("refuses a locale the API refuses, before anything is sent", async () => {
    const bad = await vericode(["send", "+50688887002", "--purpose", "login", "--locale", "not a tag"], env);
    expect(bad).toMatchObject({
      code: 1,
      stdout: "",
      stderr: "vericode: validation_error: The locale is not valid. locale: must be a language tag such as es, en or pt-BR (BCP 47).\n",
    });
    const good = await vericode(["send", "+50688887002", "--purpose", "login", "--locale", "pt-BR"], env);
    expect(good.code).toBe(0);
  });

  it("shows a number read with DEFAULT_COUNTRY in its E.164 form", async () => {
    const sent = await vericode(["send", "88887005", "--purpose", "login"], { ...env, DEFAULT_COUNTRY: "CR" });
    expect(sent.code).toBe(0);
    expect(sent.stdout).toMatch(/^Code sent to \+50688887005 \(otp_/);
  });

  it("prints its version with --version and -V", async () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, "..", "package.json"), "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) expect(await vericode([flag], env)).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it("says the default users the code uses: cli, and cli-try for try (as the README does)", async () => {
    expect((await vericode(["send", "--help"], env)).stdout).toContain('the user the code is bound to (default: "cli")');
    expect((await vericode(["verify", "--help"], env)).stdout).toContain('the user the code is bound to (default: "cli")');
    expect((await vericode(["try", "--help"], env)).stdout).toContain('the user the code is bound to (default: "cli-try")');
    const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("\n## CLI\n"), readme.indexOf("\n## Library\n"));
    expect(section).toContain("`--user` defaults to `cli` (`cli-try` for `try`)");
  });

  it("budget shows spent, reserved and left, as text or JSON", async () => {
    const budgetEnv = { ...env, SMS_BUDGET_USD: "14.2747", SMS_BUDGET_PERIOD: "total", RATE_LIMIT_NUMBER: "off" };
    expect((await vericode(["send", "+50683330003", "--purpose", "login", "--user", "usr_budget"], budgetEnv)).code).toBe(0);
    const text = await vericode(["budget"], budgetEnv);
    expect(text.code).toBe(0);
    // Costa Rica is estimated at $0.057 a message (the console provider reports no price).
    expect(text.stdout).toBe("period    total\nbudget    $14.2747\nspent     $0.0570\nreserved  $0.0000\nleft      $14.2177\n");
    const json = await vericode(["budget", "--json"], budgetEnv);
    expect(JSON.parse(json.stdout)).toEqual({ period: "total", budget_usd: 14.2747, spent_usd: 0.057, reserved_usd: 0, left_usd: 14.2177 });
    expect((await vericode(["budget"], env)).stdout).toBe("No SMS budget is set (SMS_BUDGET_USD).\n");
  });

  it("fails with a one-line reason on a bad purpose, a bad number or a bad configuration", async () => {
    const purpose = await vericode(["send", "+50688887777", "--purpose", "signup"], env);
    expect(purpose.code).not.toBe(0);
    expect(purpose.stderr).toContain("use one of registration, login, password_reset");
    const phone = await vericode(["send", "12", "--purpose", "login"], env);
    expect(phone.code).toBe(1);
    expect(phone.stderr).toMatch(/\nvericode: invalid_phone_number: [^\n]*\n$|^vericode: invalid_phone_number: [^\n]*\n$/);
    const config = await vericode(["migrate"], { ...env, OTP_LENGTH: "99" });
    expect(config.code).toBe(1);
    expect(config.stderr).toMatch(/^vericode: invalid configuration: OTP_LENGTH="99" is not allowed.*\n$/);
  });
});

describe("the vericode CLI's operator commands", () => {
  let env: Record<string, string>;
  let path: string;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "vericode-cli-ops-"));
    path = join(dir, "ops.db");
    env = { ...TEST_SECRETS, DATABASE_URL: `sqlite:${path}` };
    const store = new SqlStore({ kind: "sqlite", path });
    await store.migrate();
    const raw = openRaw({ kind: "sqlite", path });
    await insertDataSet(raw.db);
    await raw.close();
    await store.createUser({ id: "usr_ops", username: "olga", email: null, passwordHash: "x", phoneNumber: null, createdAt: Date.now() });
    await store.close();
  });

  it("report: the data set's figures as a table, JSON and CSV", async () => {
    const range = ["--from", "2026-11-01", "--to", "2026-11-03"];
    const json = await vericode(["report", ...range, "--format", "json"], env);
    expect(json.code).toBe(0);
    const { summary, timeseries } = JSON.parse(json.stdout);
    expect(summary.totals).toMatchObject({ sent: 6, verified: 3, failed: 2, refused: 3, conversion_rate: 0.5, spend_usd: 0.241 });
    expect(timeseries.points).toHaveLength(2);

    const csv = await vericode(["report", ...range, "--format", "csv"], env);
    expect(csv.stdout.split("\n")).toEqual([
      "t,sent,delivered,failed,verified,expired,locked,conversion_rate,spend_usd,refused",
      "2026-11-01T00:00:00.000Z,4,3,0,2,1,1,0.5,0.228,2",
      "2026-11-02T00:00:00.000Z,2,1,2,1,1,0,0.5,0.013,1",
      "",
    ]);

    const table = await vericode(["report", ...range, "--country", "CR"], env);
    expect(table.stdout).toContain("sent 5  delivered 4  failed 0  verified 3");
    expect(table.stdout).toContain("conversion 60.0%  time to verify: median 30 s, p95 90 s");
    expect(table.stdout).toMatch(/refusals by rule\nrule\s+count\nnumber\s+2/);

    const bad = await vericode(["report", "--since", "7x"], env);
    expect(bad).toMatchObject({
      code: 1,
      stderr: "vericode: validation_error: The report's since is not valid. since: must be a duration such as 90m, 24h, 7d or 2w.\n",
    });
  });

  it("report: every figure of the daily and the hourly table sits under its own heading", async () => {
    for (const groupBy of ["day", "hour"]) {
      const range = ["--from", "2026-11-01", "--to", "2026-11-03", "--group-by", groupBy];
      const json = await vericode(["report", ...range, "--format", "json"], env);
      const points: Record<string, number | string>[] = JSON.parse(json.stdout).timeseries.points;
      const table = await vericode(["report", ...range], env);
      expect(table.code).toBe(0);
      const rows = readTable(table.stdout, groupBy);
      expect(rows).toHaveLength(points.length);
      expect(points.length).toBeGreaterThan(0);
      for (const [i, point] of points.entries()) {
        expect(rows[i]).toEqual({
          [groupBy]: String(point.t)
            .slice(0, groupBy === "day" ? 10 : 13)
            .replace("T", " "),
          sent: String(point.sent),
          delivered: String(point.delivered),
          failed: String(point.failed),
          verified: String(point.verified),
          expired: String(point.expired),
          locked: String(point.locked),
          refused: String(point.refused),
          conversion: `${(Number(point.conversion_rate) * 100).toFixed(1)}%`,
          spend: `$${Number(point.spend_usd).toFixed(4)}`,
        });
      }
    }
  });

  it("user promote: the admin role, for a username or an email; an unknown one fails", async () => {
    const promoted = await vericode(["user", "promote", "Olga"], env);
    expect(promoted.code).toBe(0);
    expect(promoted.stdout).toContain("olga (usr_ops) now has the role admin");
    const store = new SqlStore({ kind: "sqlite", path });
    expect((await store.findUserById("usr_ops"))?.role).toBe("admin");
    await store.close();
    expect(await vericode(["user", "promote", "nobody"], env)).toMatchObject({ code: 1, stderr: expect.stringContaining("not_found") });
  });

  it("purge: deletes what is older than --days, then finds nothing", async () => {
    const first = await vericode(["purge", "--days", "7", "--json"], env);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ codes: 7, refusals: 3 });
    expect(JSON.parse((await vericode(["purge", "--days", "7", "--json"], env)).stdout)).toMatchObject({ codes: 0, refusals: 0 });
  });
});

describe("the vericode CLI's warnings", () => {
  it("says development secrets once, as a plain line, where codes are made or checked, and nowhere else", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vericode-cli-warnings-"));
    // No JWT_SECRET or OTP_SECRET: the configuration generates development secrets and warns.
    const env = { DATABASE_URL: `sqlite:${join(dir, "warnings.db")}` };
    const warning = `vericode: warning: JWT_SECRET or OTP_SECRET is not set: using development secrets kept in ${join(dir, "dev-secrets.json")}. Set both before production.`;
    for (const args of [
      ["send", "+50688887010", "--purpose", "login"],
      ["verify", "+50688887010", "000000", "--purpose", "login"],
    ]) {
      const outcome = await vericode(args, env);
      expect(outcome.stderr.split("\n").filter((line) => line.includes("development secrets"))).toEqual([warning]);
      expect(outcome.stderr.startsWith(`${warning}\n`)).toBe(true);
    }
    for (const args of [["migrate"], ["budget"], ["report"], ["purge", "--days", "7"], ["user", "promote", "nobody"]]) {
      const outcome = await vericode(args, env);
      expect({ args, stderr: outcome.stderr }).toEqual({ args, stderr: args[0] === "user" ? expect.not.stringContaining("warning") : "" });
    }
  }, 60_000);
});
