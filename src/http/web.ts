import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifySwaggerUiOptions } from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";
import { ERROR_CATALOG, ERROR_CODES } from "../errors.js";

/** The package's root: this file is src/http/web.ts or dist/http/web.js, two levels down. */
export const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));

const PLAIN_TEXT = "text/plain; charset=utf-8";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  // Every browser shows text/plain as it is; some download text/markdown instead.
  ".md": PLAIN_TEXT,
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** A fixed set of small files, read once at start-up: path → [content type, bytes]. */
export type StaticFiles = Map<string, { type: string; body: Buffer }>;

/** Reads `files` (URL path → file on disk) that exist; a missing one is left out. */
export function readStatic(files: Record<string, string>): StaticFiles {
  const found: StaticFiles = new Map();
  for (const [path, file] of Object.entries(files)) {
    if (!existsSync(file)) continue;
    found.set(path, { type: TYPES[extname(file)] ?? "application/octet-stream", body: readFileSync(file) });
  }
  return found;
}

/** Serves a StaticFiles set with a content hash as ETag (pages are small; no streaming needed). */
export function serveStatic(app: FastifyInstance, files: StaticFiles): void {
  for (const [path, file] of files) {
    const etag = `"${createHash("sha256").update(file.body).digest("base64url").slice(0, 22)}"`;
    app.get(path, { schema: { hide: true } }, async (request, reply) => {
      reply.header("cache-control", "no-cache").header("etag", etag);
      if (request.headers["if-none-match"] === etag) return reply.code(304).send();
      return reply.type(file.type).send(file.body);
    });
  }
}

/**
 * The plain HTML/JS demo (`web/`) at `/` (WEB_DEMO). Nothing is served when the files are not there (a
 * build without them), so the routes only exist where they work.
 */
export function webDemo(app: FastifyInstance): void {
  const web = join(PACKAGE_ROOT, "web");
  serveStatic(app, readStatic({ "/": join(web, "index.html"), "/app.js": join(web, "app.js"), "/style.css": join(web, "style.css") }));
}

/**
 * The operator's dashboard at `/dashboard/` (its data comes from the admin-only analytics API), Chart.js's
 * browser build beside it, and the typed client both pages use (`vericode/client`, built to
 * dist/client/index.js) at `/client.js`.
 */
export function dashboard(app: FastifyInstance): void {
  const folder = join(PACKAGE_ROOT, "web", "dashboard");
  const chartJs = join(dirname(createRequire(import.meta.url).resolve("chart.js")), "chart.umd.min.js");
  serveStatic(
    app,
    readStatic({
      "/client.js": join(PACKAGE_ROOT, "dist", "client", "index.js"),
      "/dashboard/": join(folder, "index.html"),
      "/dashboard/dashboard.js": join(folder, "dashboard.js"),
      "/dashboard/dashboard.css": join(folder, "dashboard.css"),
      "/dashboard/chart.umd.min.js": chartJs,
    }),
  );
}

/** Where the API reference's description links to the error catalogue. */
export const ERRORS_PATH = "/docs/errors.md";

/** vericode's mark for the API reference's tab: a check in the demo's accent blue. */
const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#0b6bcb"/>' +
  '<path d="M9 16.5l4.5 4.5L23 11.5" fill="none" stroke="#fff" stroke-width="3.5" stroke-linecap="round" stroke-linejoin="round"/></svg>';

/**
 * The API reference at `/docs` (Swagger UI). Its base layout has no top bar: the bar's Swagger logo is
 * drawn with an inline <style> that the page's CSP refuses (a console error on every visit), and the
 * plugin then swaps it for Fastify's. The document's own title, "vericode", heads the page instead.
 */
export const API_REFERENCE: FastifySwaggerUiOptions = {
  routePrefix: "/docs",
  staticCSP: true,
  theme: {
    title: "vericode API reference",
    favicon: [{ filename: "vericode.svg", rel: "icon", type: "image/svg+xml", sizes: "any", content: FAVICON }],
  },
  uiConfig: { layout: "BaseLayout", deepLinking: true },
};

/**
 * The error catalogue the API reference links to (ERRORS_PATH): docs/errors.md, each code with its
 * meaning and how to solve it. An installed package has no docs/ folder: the codes, statuses and titles
 * of the catalogue in the code are served then, so the link never breaks.
 */
export function errorCatalogue(app: FastifyInstance): void {
  const file = join(PACKAGE_ROOT, "docs", "errors.md");
  const found = readStatic({ [ERRORS_PATH]: file });
  if (!found.has(ERRORS_PATH)) {
    const rows = ERROR_CODES.map((code) => `| \`${code}\` | ${ERROR_CATALOG[code].status} | ${ERROR_CATALOG[code].title} |`);
    const text = ["# Errors", "", "| code | status | title |", "| --- | --- | --- |", ...rows, ""].join("\n");
    found.set(ERRORS_PATH, { type: PLAIN_TEXT, body: Buffer.from(text) });
  }
  serveStatic(app, found);
}
