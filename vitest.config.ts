import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more workers only thrash. Servers in tests bind port 0, so files
    // running side by side never collide.
    maxWorkers: 2,
    env: { PEREGRINE_LOG_LEVEL: "warn" },
  },
});
