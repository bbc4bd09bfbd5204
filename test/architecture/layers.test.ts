import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const SRC = resolve(import.meta.dirname, "../../src");

/**
 * The layers, top to bottom (docs/architecture.md): an import runs down, never up. Within a layer only
 * the pairs listed in SIDEWAYS may import each other.
 */
const LAYERS: [rank: number, prefixes: string[]][] = [
  [5, ["index.ts", "cli/", "client/"]],
  [4, ["http/"]],
  [3, ["vericode.ts", "config.ts", "config/"]],
  [2, ["accounts/", "analytics/", "otp/", "verify/"]],
  [1, ["limits/", "channels/", "store/"]],
];
/** Imports within one layer that are part of the design. */
const SIDEWAYS: [from: string, to: string][] = [
  ["accounts/", "otp/"],
  // The /v2 API records a send's delivery and spend as the native API does.
  ["verify/", "otp/delivery.ts"],
  ["vericode.ts", "config"],
  // The limiter counts in the store's tables through its public interface, never its internals.
  ["limits/", "store/store.ts"],
];
/** What store/ shows the rest of the code: its interfaces, the class that implements them, the reports, the /v2 API's store. */
const STORE_PUBLIC = ["store/store.ts", "store/sql-store.ts", "store/report-store.ts", "store/verify-store.ts"];

function rank(file: string): number {
  return LAYERS.find(([, prefixes]) => prefixes.some((prefix) => file.startsWith(prefix)))?.[0] ?? 0;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/**
 * Every relative import of src/, as paths from src/ (`otp/otp-service.ts`). A type-only import of the
 * configuration's types is not a dependency on it: every layer takes its options in those shapes.
 */
function imports(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, false);
  const found: string[] = [];
  for (const node of source.statements) {
    if (!(ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) || node.moduleSpecifier === undefined) continue;
    const specifier = (node.moduleSpecifier as ts.StringLiteral).text;
    if (!specifier.startsWith(".")) continue;
    const target = relative(SRC, resolve(dirname(file), specifier.replace(/\.js$/, ".ts")));
    const typeOnly = ts.isImportDeclaration(node) ? node.importClause?.isTypeOnly === true : node.isTypeOnly;
    if (typeOnly && (target === "config.ts" || target.startsWith("config/"))) continue;
    found.push(target);
  }
  // Modules a function loads when it needs them (`await import("./limits/redis-limiter.js")`).
  for (const match of source.text.matchAll(/import\("(\.{1,2}\/[^"]+)"\)/g)) {
    found.push(relative(SRC, resolve(dirname(file), (match[1] as string).replace(/\.js$/, ".ts"))));
  }
  return found;
}

const FILES = sourceFiles(SRC).map((path) => ({ path, name: relative(SRC, path) }));

describe("architecture", () => {
  it("imports run one way: http → vericode → (accounts, analytics, otp) → (limits, channels, store) → leaf modules", () => {
    const wrong: string[] = [];
    for (const { path, name } of FILES) {
      for (const target of imports(path)) {
        const from = (name.split("/")[0] as string).replace(/\.ts$/, "");
        const to = (target.split("/")[0] as string).replace(/\.ts$/, "");
        if (from === to) continue;
        const up = rank(target) > rank(name);
        const sideways = rank(target) === rank(name) && rank(name) > 0;
        const allowed = SIDEWAYS.some(([a, b]) => name.startsWith(a) && target.startsWith(b));
        if (up || (sideways && !allowed)) wrong.push(`${name} → ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("store/ keeps its internals: outside it, only its interfaces, SqlStore and the report store are imported", () => {
    const wrong = FILES.filter(({ name }) => !name.startsWith("store/")).flatMap(({ path, name }) =>
      imports(path)
        .filter((target) => target.startsWith("store/") && !STORE_PUBLIC.includes(target))
        .map((target) => `${name} → ${target}`),
    );
    expect(wrong).toEqual([]);
  });

  it("nothing outside store/ branches on a database's name", () => {
    const wrong = FILES.filter(({ name }) => !name.startsWith("store/")).filter(({ path }) =>
      /dialect\s*[!=]==?\s*"(postgres|sqlite)"|"(postgres|sqlite)"\s*[!=]==?\s*\w*dialect/.test(readFileSync(path, "utf8")),
    );
    expect(wrong.map(({ name }) => name)).toEqual([]);
  });

  // (ioredis's one importer, limits/redis-limiter.ts, is itself loaded by `await import()` when REDIS_URL is set.)
  it("pg loads when a PostgreSQL database is opened: no module of src/ imports it as a value", () => {
    const eager = FILES.flatMap(({ path, name }) => {
      const source = ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.Latest, false);
      return source.statements
        .filter(
          (node) =>
            ts.isImportDeclaration(node) &&
            (node.moduleSpecifier as ts.StringLiteral).text === "pg" &&
            node.importClause?.isTypeOnly !== true,
        )
        .map(() => name);
    });
    expect(eager).toEqual([]);
  });

  it("no function in src/ is over 80 lines", () => {
    const long: string[] = [];
    for (const { path, name } of FILES) {
      const source = ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        if (ts.isFunctionLike(node) && "body" in node && node.body !== undefined) {
          const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
          const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
          // Route plugins and statement tables are lists of small parts, not one long procedure.
          if (end - start + 1 > 80 && !isTable(node)) long.push(`${name}:${start + 1} (${end - start + 1} lines)`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    expect(long).toEqual([]);
  });
});

/**
 * A function whose body is one returned object literal (a table of statements) or a Fastify plugin that
 * registers routes: long as a list, each entry short.
 */
function isTable(node: ts.Node): boolean {
  const body = (node as ts.FunctionLikeDeclaration).body;
  if (body === undefined || !ts.isBlock(body)) return false;
  const last = body.statements.at(-1);
  if (last !== undefined && ts.isReturnStatement(last) && last.expression !== undefined && ts.isObjectLiteralExpression(last.expression)) {
    return true;
  }
  return (
    body.statements.every(
      (statement) =>
        ts.isExpressionStatement(statement) ||
        (ts.isVariableStatement(statement) && statement.declarationList.declarations.every((d) => d.initializer !== undefined)),
    ) && /\bapp\.(get|post|put|delete|route|register)\(/.test(body.getText())
  );
}
