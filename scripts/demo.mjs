#!/usr/bin/env node
// The main job: a freeze drill against examples/express-api with the built-in simulator.
console.error(
  'freezeguard demo: not available yet — it needs the simulator, `freezeguard drill` and the express example.',
);
process.exit(1);
