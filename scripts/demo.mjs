#!/usr/bin/env node
// The main job: a freeze drill against examples/express-api with the built-in IMDS
// simulator — no Azure, no Redis. The app is started with a 5 s drain delay (the load
// balancer in this drill probes every 250 ms), frozen with SIGSTOP for 5 s, and judged.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = fileURLToPath(new URL('../packages/simulator/dist/cli.js', import.meta.url));
const app = fileURLToPath(new URL('../examples/express-api/src/server.js', import.meta.url));
const extra = process.argv.slice(2);

console.log('freezeguard demo: drilling examples/express-api through a 5 s Freeze (about 15 s)\n');
const child = spawn(
  process.execPath,
  [cli, 'drill', '--freeze', '5s', '--notice', '20s', ...extra, '--', process.execPath, app],
  {
    cwd: root,
    stdio: 'inherit',
    env: {
      ...process.env,
      FREEZEGUARD_DRAIN_DELAY_MS: process.env.FREEZEGUARD_DRAIN_DELAY_MS ?? '5000',
    },
  },
);
// Ctrl-C reaches the drill through the terminal's process group; it resumes and stops the app.
process.on('SIGINT', () => {});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 130 : 1)));
