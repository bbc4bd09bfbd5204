import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Spawned processes and database work: a few files at a time keep the 2-core machine responsive.
    maxWorkers: 4,
  },
});
