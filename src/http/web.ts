import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";

/** The package's root: this file is src/http/web.ts or dist/http/web.js, two levels down. */
export const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
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
