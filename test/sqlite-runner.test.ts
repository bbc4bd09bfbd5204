import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { describe, expect, it } from "vitest";
import { once, SqliteRunner, type Step } from "../src/store/prepared.js";

interface Db {
  t: { x: number };
}

describe("SqliteRunner: the transactions of one turn commit together", () => {
  function setup() {
    const sqlite = new BetterSqlite3(":memory:");
    sqlite.exec("create table t (x integer not null)");
    const db = new Kysely<Db>({ dialect: new SqliteDialect({ database: sqlite }) });
    const insert = (x: number) => once(db.insertInto("t").values({ x }));
    const rows = () => (sqlite.prepare("select x from t order by x").all() as { x: number }[]).map((r) => r.x);
    let commits = 0;
    const runner = new SqliteRunner(sqlite);
    const original = sqlite.transaction.bind(sqlite);
    // Count the outer transactions (nested ones are savepoints).
    let depth = 0;
    sqlite.transaction = ((fn: (...args: unknown[]) => unknown) => {
      const wrapped = original((...args: unknown[]) => {
        depth += 1;
        try {
          return fn(...args);
        } finally {
          depth -= 1;
        }
      });
      const count = (run: () => unknown) => () => {
        if (depth === 0) commits += 1;
        return run();
      };
      return Object.assign(
        count(() => wrapped()),
        { immediate: count(() => wrapped.immediate()) },
      );
    }) as typeof sqlite.transaction;
    return { runner, insert, rows, commits: () => commits };
  }

  it("commits a turn's steps once, and undoes only the step that throws", async () => {
    const { runner, insert, rows, commits } = setup();
    const refused = new Error("refused");
    const results = await Promise.allSettled([
      runner.transaction(function* (): Step<string> {
        yield insert(1);
        return "a";
      }),
      runner.transaction(function* (): Step<string> {
        yield insert(2);
        throw refused;
      }),
      runner.transaction(function* (): Step<string> {
        yield insert(3);
        return "c";
      }),
    ]);
    expect(results).toEqual([
      { status: "fulfilled", value: "a" },
      { status: "rejected", reason: refused },
      { status: "fulfilled", value: "c" },
    ]);
    expect(rows()).toEqual([1, 3]);
    // One attempt straight through (rolled back by the refusal), then one with savepoints.
    expect(commits()).toBe(2);

    await Promise.all([
      runner.transaction(function* () {
        yield insert(4);
      }),
      runner.transaction(function* () {
        yield insert(5);
      }),
    ]);
    expect(rows()).toEqual([1, 3, 4, 5]);
    expect(commits()).toBe(3);
  });

  it("a lone step that throws is undone and rejected", async () => {
    const { runner, insert, rows } = setup();
    await expect(
      runner.transaction(function* () {
        yield insert(7);
        throw new Error("no");
      }),
    ).rejects.toThrow("no");
    expect(rows()).toEqual([]);
  });
});
