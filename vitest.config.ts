import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Clears test-results/logs first; after the run, fails it if any log line leaks a code, token or number.
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Spawned processes and database work: a few files at a time keep the 2-core machine responsive.
    maxWorkers: 4,
  },
});
