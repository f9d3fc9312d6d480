import { defineConfig } from 'vitest/config';

// One vitest process runs every workspace: each folder below is its own project, so a
// new package is picked up without touching this file.
export default defineConfig({
  test: {
    projects: ['packages/*', 'examples/*', 'test'],
  },
});
