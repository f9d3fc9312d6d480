import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

// Issue 19, seen in CI: node:cluster workers of one app elected two pollers for one VM.
// A worker's listen() on a Unix socket path is handed to the cluster primary, which gives
// every worker asking for the same path the same handle, so two workers both took one
// term: two leaders, each with part of the VM's processes, each approving for the VM.

const script = fileURLToPath(new URL('./fixtures/bin/cluster-leaders.mjs', import.meta.url));

function race(dir: string, workers: number): Promise<{ worker: string; led: boolean }[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      env: { ...process.env, DIR: dir, WORKERS: String(workers), AT: String(Date.now() + 1500) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', () =>
      resolve(
        out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      ),
    );
  });
}

it('node:cluster workers racing for one term: exactly one leads it', async () => {
  const rounds = 5;
  const leaders: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'fg-cluster-'));
    try {
      const results = await race(dir, 4);
      expect(results).toHaveLength(4);
      leaders.push(results.filter((r) => r.led).length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(
    `cluster term race: ${rounds} rounds of 4 workers, leaders per round ${leaders.join(', ')}\n`,
  );
  expect(leaders).toEqual(Array(rounds).fill(1));
}, 60_000);
