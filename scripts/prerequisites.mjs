#!/usr/bin/env node
// Makes sure the programs the integration and end-to-end tests start are on PATH:
// installs them with apt-get when we are root on Debian, otherwise fails at once with
// the exact command to run. Tests never skip because something is missing.
import { spawnSync } from 'node:child_process';
import { ensureVmAssets, vmHostPrograms } from '../test/vm/prerequisites.mjs';

const needed = [
  { bin: 'redis-server', pkg: 'redis-server', why: 'BullMQ integration tests' },
  { bin: 'haproxy', pkg: 'haproxy', why: 'end-to-end tests behind a load balancer' },
  { bin: 'chromium', pkg: 'chromium', why: 'the drill report browser test (playwright-core)' },
  { bin: 'wrk', pkg: 'wrk', why: 'the HTTP overhead bench (npm run bench, checked by npm test)' },
  ...vmHostPrograms, // qemu, busybox, cpio for the VM drill (test/vm)
];

// The VM drill's guest kernel and qemu-ga: unpacked .debs in a cache, once apt works.
function vmAssetsOrExit() {
  const problem = ensureVmAssets();
  if (problem === null) process.exit(0);
  console.error(`prerequisites: ${problem}`);
  process.exit(1);
}

const onPath = (bin) =>
  spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
let missing = needed.filter((n) => !onPath(n.bin));
if (missing.length === 0) vmAssetsOrExit();

const pkgs = missing.map((m) => m.pkg).join(' ');
const command = `apt-get update && apt-get install -y ${pkgs}`;
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (isRoot && onPath('apt-get')) {
  console.log(`prerequisites: installing ${pkgs} (${missing.map((m) => m.why).join('; ')})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = spawnSync('sh', ['-c', command], { stdio: 'inherit', env });
  missing = needed.filter((n) => !onPath(n.bin));
  if (run.status === 0 && missing.length === 0) vmAssetsOrExit();
}
console.error(
  `prerequisites: missing ${missing.map((m) => `${m.bin} (${m.why})`).join(', ')}.\nInstall with:\n  sudo ${command}`,
);
process.exit(1);
