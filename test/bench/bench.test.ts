import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

// The bench is not run for its figures here (too short to mean anything) but so that it
// cannot rot: every stage must complete on its own within its limit.
it('npm run bench -- --quick --check: every stage completes and prints its figures', async () => {
  const child = spawn(process.execPath, ['scripts/bench.mjs', '--quick', '--check'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) console.error(err);
  expect(code).toBe(0);
  expect(out).not.toMatch(/FAILED/);
  for (const stage of ['core', 'express', 'fastify', 'http', 'drill', 'bullmq', 'pause'])
    expect(out).toMatch(new RegExp(`^\\| ${stage} \\|`, 'm'));
  expect(out).toMatch(/\| Express 5 \|.*\|\n\| Fastify 5 \|/);
}, 300_000);
