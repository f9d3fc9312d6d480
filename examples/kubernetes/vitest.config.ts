import { defineProject } from 'vitest/config';

// The manifests are checked against the Kubernetes schemas and against the app they run:
// one test starts examples/express-api with the Deployment's environment.
export default defineProject({
  test: {
    name: 'example-kubernetes',
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
  },
});
