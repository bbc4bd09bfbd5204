import { defineConfig } from "vitest/config";

// `npm run test:twilio-live`: the real Twilio API. Never part of `npm test` nor CI (vitest.config.ts
// includes test/**/*.test.ts only outside test/live).
export default defineConfig({
  test: {
    include: ["test/live/**/*.live.ts"],
    testTimeout: 120_000,
    hookTimeout: 30_000,
    maxWorkers: 1,
  },
});
