import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rehearseFreeze } from '@freezeguard/simulator';
import { sseClient } from '@freezeguard/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { twoAzureVms } from '../helpers/load.js';
import { startApp, startHaproxy, stopAll } from '../helpers/processes.js';
import { printTable } from '../helpers/report.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
  await stopAll();
});

async function drill(guarded: boolean) {
  const dir = await mkdtemp(join(tmpdir(), 'fg-stream-'));
  closers.push(() => rm(dir, { recursive: true, force: true }));
  const [simA, simB] = await twoAzureVms(closers);
  const common: Record<string, string> = {
    FEED_EPOCH: String(Date.now()),
    FEED_INTERVAL_MS: '50',
    SSE_RETRY_MS: '300',
    FREEZEGUARD_DRAIN_DELAY_MS: '2500',
    ...(guarded ? {} : { FREEZEGUARD_DISABLED: '1' }),
  };
  const a = await startApp(
    'streaming',
    {
      ...common,
      AUDIT_LOG: join(dir, 'a.log'),
      FREEZEGUARD_IMDS_ENDPOINT: simA.url,
      FREEZEGUARD_RESOURCE_NAME: 'vm-a',
    },
    'A',
  );
  const b = await startApp(
    'streaming',
    {
      ...common,
      AUDIT_LOG: join(dir, 'b.log'),
      FREEZEGUARD_IMDS_ENDPOINT: simB.url,
      FREEZEGUARD_RESOURCE_NAME: 'vm-b',
    },
    'B',
  );
  // `first`: every stream goes to A while A is up, so A's freeze hits the client.
  const lb = await startHaproxy([a, b], { balance: 'first', serverTimeout: '30s' });
  closers.push(() => lb.stop());
  const client = sseClient(`${lb.url}/events`, { initialRetryMs: 300 });
  closers.push(async () => client.stop());
  await new Promise((r) => setTimeout(r, 1000));
  await rehearseFreeze({ sim: simA, pid: a.proc.pid!, freezeMs: 5000, noticeMs: 4000 });
  await new Promise((r) => setTimeout(r, 2500));
  client.stop();
  const ids = client.ids;
  const first = ids[0]!;
  const expected = Array.from({ length: ids.at(-1)! - first + 1 }, (_, i) => first + i);
  let maxGap = 0;
  for (let i = 1; i < client.arrivals.length; i++)
    maxGap = Math.max(maxGap, client.arrivals[i]! - client.arrivals[i - 1]!);
  return {
    events: ids.length,
    duplicates: ids.length - new Set(ids).size,
    missing: expected.filter((id) => !ids.includes(id)).length,
    inOrder: ids.every((id, i) => i === 0 || id === ids[i - 1]! + 1),
    maxGapMs: Math.round(maxGap),
    connections: client.connections(),
    retryHints: client.retries.length,
  };
}

describe('streaming example (SSE) through HAProxy and a freeze', () => {
  it('guarded: every event id exactly once, handed over with no stall; unguarded: the stream stalls', async () => {
    const guarded = await drill(true);
    await stopAll();
    while (closers.length) await closers.pop()!();
    const unguarded = await drill(false);
    printTable('SSE through HAProxy, 1 event / 50 ms, instance A frozen 5 s', {
      guarded: { ...guarded, inOrder: String(guarded.inOrder) },
      unguarded: { ...unguarded, inOrder: String(unguarded.inOrder) },
    });
    expect(guarded).toMatchObject({ duplicates: 0, missing: 0, inOrder: true });
    expect(guarded.retryHints).toBeGreaterThanOrEqual(1);
    expect(guarded.connections).toBeGreaterThanOrEqual(2);
    expect(guarded.maxGapMs).toBeLessThan(2000);
    expect(unguarded.maxGapMs).toBeGreaterThanOrEqual(4000);
  });
});
