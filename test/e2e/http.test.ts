import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { behindHaproxy, loadThroughFreeze, twoAzureVms } from '../helpers/load.js';
import { type Haproxy, startApp, startHaproxy, stopAll } from '../helpers/processes.js';
import { printTable } from '../helpers/report.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
  await stopAll();
});

const FREEZE_MS = 5000;
const RATE = 100;

interface Outcome {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  p99: number;
  max: number;
  approved: boolean;
}

/** Two instances behind HAProxy under a fixed-rate load; instance A is frozen for 5 s. */
async function freezeBehindLoadBalancer(example: string, guarded: boolean): Promise<Outcome> {
  const [simA, simB] = await twoAzureVms(closers);
  const common = behindHaproxy(guarded);
  const a = await startApp(
    example,
    { ...common, FREEZEGUARD_IMDS_ENDPOINT: simA.url, FREEZEGUARD_RESOURCE_NAME: 'vm-a' },
    'A',
  );
  const b = await startApp(
    example,
    { ...common, FREEZEGUARD_IMDS_ENDPOINT: simB.url, FREEZEGUARD_RESOURCE_NAME: 'vm-b' },
    'B',
  );
  const lb: Haproxy = await startHaproxy([a, b]);
  closers.push(() => lb.stop());
  const { rehearsal, result } = await loadThroughFreeze(
    `${lb.url}/api/items`,
    { rate: RATE, durationS: 15 },
    { sim: simA, pid: a.proc.pid!, freezeMs: FREEZE_MS, noticeMs: 4000 },
  );
  return {
    requests: result.requests.total,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    p99: result.latency.p99,
    max: result.latency.max,
    approved: rehearsal.approved,
  };
}

const rows: Record<string, Record<string, string | number>> = {};
afterAll(() => {
  printTable(
    `HTTP behind HAProxy, ${RATE} req/s, instance A frozen ${FREEZE_MS / 1000} s (SIGSTOP)`,
    rows,
  );
});

describe.each(['express-api', 'fastify-api'])('%s behind HAProxy through a freeze', (example) => {
  it('guarded: no failed or timed-out request, p99 < 1 s; unguarded: the damage is visible', async () => {
    const guarded = await freezeBehindLoadBalancer(example, true);
    await stopAll();
    while (closers.length) await closers.pop()!();
    const unguarded = await freezeBehindLoadBalancer(example, false);
    for (const [name, o] of [
      ['guarded', guarded],
      ['unguarded', unguarded],
    ] as const) {
      rows[`${example} ${name}`] = {
        requests: o.requests,
        '2xx': o.ok,
        'non-2xx': o.non2xx,
        errors: o.errors,
        timeouts: o.timeouts,
        'p99 ms': o.p99,
        'max ms': o.max,
      };
    }
    expect(guarded.approved).toBe(true);
    expect(guarded.requests).toBeGreaterThan(RATE * 10);
    expect({ non2xx: guarded.non2xx, errors: guarded.errors, timeouts: guarded.timeouts }).toEqual({
      non2xx: 0,
      errors: 0,
      timeouts: 0,
    });
    expect(guarded.p99).toBeLessThan(1000);
    // The harness must be able to see a failure, or the guarded result proves nothing.
    const damage = unguarded.non2xx + unguarded.errors + unguarded.timeouts;
    expect(damage > 0 || unguarded.p99 >= FREEZE_MS).toBe(true);
  });
});
