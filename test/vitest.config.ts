import { defineProject } from 'vitest/config';

// End-to-end tests start real processes, HAProxy and Redis, and measure latency: they get
// long timeouts and run one file at a time.
export default defineProject({
  test: {
    name: 'e2e',
    include: [
      'e2e/**/*.test.ts',
      'vm/**/*.test.ts',
      'install/**/*.test.ts',
      'bench/**/*.test.ts',
      'docs/**/*.test.ts',
    ],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
