import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run demo:react` serves this demo on :5173 and forwards /api to vericode (VERICODE_URL, default
// http://127.0.0.1:3000), so the pages and the API share an origin as they would behind one proxy.
const target = process.env.VERICODE_URL ?? "http://127.0.0.1:3000";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  plugins: [react()],
  resolve: {
    // The typed client the package exports as `vericode/client`, from its source.
    alias: { "vericode/client": fileURLToPath(new URL("../../src/client/index.ts", import.meta.url)) },
  },
  server: { host: "127.0.0.1", proxy: { "/api": target } },
  preview: { proxy: { "/api": target } },
  build: { outDir: "dist", emptyOutDir: true },
});
