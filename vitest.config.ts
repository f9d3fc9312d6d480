import { defineConfig } from 'vitest/config';

// One vitest process runs every workspace: each folder below is its own project, so a
// new package is picked up without touching this file. Files run one at a time: the
// suites measure pauses, latencies and lock expiries with real processes, and two cores
// shared with a parallel run would make those figures lie.
export default defineConfig({
  test: {
    projects: ['packages/*', 'examples/*', 'test'],
    maxWorkers: 1,
  },
});
