import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { once, type Step } from "../src/store/prepared.js";
import { DatabaseLocked, SqliteRunner, StatementCache } from "../src/store/sqlite/runner.js";

interface Db {
  t: { x: number };
}

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A runner on a file, with a count of its commits and of the times each step started. */
function setup(options: { lockWaitMs?: number } = {}) {
  const folder = mkdtempSync(join(tmpdir(), "vericode-runner-"));
  folders.push(folder);
  const path = join(folder, "r.db");
  const sqlite = new BetterSqlite3(path);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("busy_timeout = 5");
  sqlite.exec("create table t (x integer not null)");
  let commits = 0;
  const prepare = sqlite.prepare.bind(sqlite);
  sqlite.prepare = ((text: string) => {
    const statement = prepare(text);
    if (text !== "COMMIT") return statement;
    const run = statement.run.bind(statement);
    return Object.assign(statement, {
      run: () => {
        commits += 1;
        return run();
      },
    });
  }) as typeof sqlite.prepare;
  const db = new Kysely<Db>({ dialect: new SqliteDialect({ database: sqlite }) });
  const insert = (x: number) => once(db.insertInto("t").values({ x }));
  const insertAll = (xs: (number | null)[]) => once(db.insertInto("t").values(xs.map((x) => ({ x: x as number }))));
  const rows = () => (sqlite.prepare("select x from t order by x").all() as { x: number }[]).map((r) => r.x);
  const runner = new SqliteRunner(sqlite, new StatementCache(sqlite), options);
  return { path, runner, insert, insertAll, rows, commits: () => commits };
}

describe("SqliteRunner: the transactions of one turn commit together", () => {
  it("commits a turn's steps once, each run once; a step that fails before writing fails alone", async () => {
    const { runner, insert, rows, commits } = setup();
    const started: string[] = [];
    const results = await Promise.allSettled([
      runner.transaction(function* (): Step<string> {
        started.push("a");
        yield insert(1);
        return "a";
      }),
      runner.transaction(function* (): Step<string> {
        started.push("b");
        // A statement that fails undoes itself: the step wrote nothing.
        yield once({
          compile: () => ({ sql: "insert into missing values (1)", parameters: [], query: {} as never, queryId: {} as never }),
        });
        return "b";
      }),
      runner.transaction(function* (): Step<string> {
        started.push("c");
        yield insert(3);
        return "c";
      }),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(results[2]).toEqual({ status: "fulfilled", value: "c" });
    expect(rows()).toEqual([1, 3]);
    expect(started).toEqual(["a", "b", "c"]);
    expect(commits()).toBe(1);
  });

  it("a step that fails after writing rolls back the steps that ran with it; no step runs twice", async () => {
    const { runner, insert, rows, commits } = setup();
    const broken = new Error("broken");
    const started: string[] = [];
    const results = await Promise.allSettled([
      runner.transaction(function* () {
        started.push("a");
        yield insert(1);
      }),
      runner.transaction(function* () {
        started.push("b");
        yield insert(2);
        throw broken;
      }),
      runner.transaction(function* () {
        started.push("c");
        yield insert(3);
      }),
    ]);
    expect(results[0]).toMatchObject({ status: "rejected", reason: { cause: broken } });
    expect(results[1]).toEqual({ status: "rejected", reason: broken });
    // The step after the failure had not run: it runs in the next batch, once.
    expect(results[2]).toEqual({ status: "fulfilled", value: undefined });
    expect(started).toEqual(["a", "b", "c"]);
    expect(rows()).toEqual([3]);
    expect(commits()).toBe(1);
  });

  it("a lone step that throws leaves nothing", async () => {
    const { runner, insert, rows } = setup();
    await expect(
      runner.transaction(function* () {
        yield insert(7);
        throw new Error("no");
      }),
    ).rejects.toThrow("no");
    expect(rows()).toEqual([]);
  });

  it("throws a failed statement into its step: a step that catches it goes on, with that statement undone alone", async () => {
    const { runner, insert, insertAll, rows, commits } = setup();
    const [caught, other] = await Promise.all([
      runner.transaction(function* (): Step<string> {
        yield insert(1);
        try {
          // Two rows in one statement, the second breaking NOT NULL: SQLite undoes the first row too.
          yield insertAll([2, null]);
        } catch (error) {
          yield insert(3);
          return (error as { code: string }).code;
        }
        return "not thrown";
      }),
      runner.transaction(function* (): Step<void> {
        yield insert(4);
      }),
    ]);
    expect(caught).toBe("SQLITE_CONSTRAINT_NOTNULL");
    expect(other).toBeUndefined();
    expect(rows()).toEqual([1, 3, 4]);
    expect(commits()).toBe(1);
  });

  it("waits for another process's lock between turns of the event loop, then commits", async () => {
    const { path, runner, insert, rows } = setup();
    const other = new BetterSqlite3(path);
    other.exec("BEGIN IMMEDIATE");
    expect(() => runner.probeWrite()).toThrow();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const write = runner.transaction(function* () {
      yield insert(1);
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    other.exec("COMMIT");
    await write;
    clearInterval(ticker);
    other.close();
    expect(rows()).toEqual([1]);
    // The event loop kept turning while the write waited for the lock.
    expect(ticks).toBeGreaterThan(10);
    expect(() => runner.probeWrite()).not.toThrow();
  });

  it("gives up with DatabaseLocked when the lock outlasts the wait, and leaves nothing", async () => {
    const { path, runner, insert, rows } = setup({ lockWaitMs: 100 });
    const other = new BetterSqlite3(path);
    other.exec("BEGIN IMMEDIATE");
    const write = runner.transaction(function* () {
      yield insert(1);
    });
    await expect(write).rejects.toBeInstanceOf(DatabaseLocked);
    other.exec("ROLLBACK");
    other.close();
    expect(rows()).toEqual([]);
    await runner.transaction(function* () {
      yield insert(2);
    });
    expect(rows()).toEqual([2]);
  });
});
