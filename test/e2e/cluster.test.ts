import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Simulator, startSimulator } from '@freezeguard/simulator';
import { freePort } from '@freezeguard/simulator/process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { logsOf, spawnTracked, stopAll } from '../helpers/processes.js';
import { getsPerSecond, printTable } from '../helpers/report.js';

// node:cluster, 4 workers of one Express app on one VM (one Azure emulator), each worker
// guarded as a single-process app is: createGuard({ approve: 'solo' }), nothing about the
// other workers. Their jobs need 0.3 s to 4.2 s to finish before the freeze. With VM-local
// coordination (the default) the VM must be approved once, after the last worker
// prepared, from one poller; FREEZEGUARD_LOCAL=0 shows what happens without it.

const script = fileURLToPath(new URL('../fixtures/cluster-app.mjs', import.meta.url));
const PREPARE_MS = [300, 1500, 2800, 4200];
const wait = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

const sims: Simulator[] = [];
afterEach(async () => {
  await stopAll();
  for (const s of sims.splice(0)) await s.close();
});
const rows: Record<string, Record<string, string | number>> = {};
afterAll(() => {
  if (Object.keys(rows).length)
    printTable('node:cluster, 4 Express workers on one VM, approve: solo', rows);
});

type Line = Record<string, unknown> & { at: number };
function lines(proc: ChildProcess): Line[] {
  return logsOf(proc).flatMap((l) => {
    try {
      return [JSON.parse(l) as Line];
    } catch {
      return [];
    }
  });
}

async function until<T>(what: string, probe: () => T | undefined | false, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await wait(25);
  }
}

async function run(local: boolean) {
  const sim = await startSimulator({ resourceName: 'vm-cluster' });
  sims.push(sim);
  const proc = spawnTracked(
    process.execPath,
    [script],
    {
      PORT: String(await freePort()),
      PREPARE_MS: PREPARE_MS.join(','),
      FREEZEGUARD_IMDS_ENDPOINT: sim.url,
      FREEZEGUARD_DRAIN_DELAY_MS: '1000',
      ...(local ? {} : { FREEZEGUARD_LOCAL: '0' }),
    },
    local ? 'cluster' : 'cluster-alone',
  );
  const of = (match: (l: Line) => boolean) => lines(proc).filter(match);
  await until('4 workers listening', () => of((l) => l.listening === true).length === 4);
  // Let the workers settle (elect a poller), then count what the VM asks of IMDS.
  await wait(2000);
  const from = Date.now();
  await wait(5000);
  const rate = getsPerSecond(
    sim.requests
      .filter(
        (r) => r.at >= from && r.method === 'GET' && r.path.startsWith('/metadata/scheduledevents'),
      )
      .map((r) => r.at),
  ).perSecond;

  const t0 = Date.now();
  const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 45_000, autoStart: false });
  await until('every worker prepared', () => of((l) => l.prepared === true).length === 4);
  await until('an approval', () => sim.approvals.some((a) => a.eventId === ev.EventId));
  // Late duplicates would come within a poll or two.
  await wait(2500);
  const seenAt = (w: number) => of((l) => l.worker === w && l.event === ev.EventId)[0]?.at;
  const latencies = PREPARE_MS.map((_, w) => (seenAt(w) ?? Number.POSITIVE_INFINITY) - t0);
  const lastPrepared = Math.max(...of((l) => l.prepared === true).map((l) => l.at));
  const approvals = sim.approvals.filter((a) => a.eventId === ev.EventId);
  const first = Math.min(...approvals.map((a) => a.at));
  const result = {
    'IMDS GET/s (idle, 5 s)': rate,
    '429s': sim.requests.filter((r) => r.status === 429).length,
    'event seen by every worker, max ms': Math.max(...latencies),
    StartRequests: approvals.length,
    'first StartRequests - last worker prepared (ms)': first - lastPrepared,
    'worker exits': of((l) => 'exited' in l).length,
    warnings: of((l) => l.log === 'warn' || l.log === 'error').length,
  };
  rows[local ? 'VM-local coordination (default)' : 'FREEZEGUARD_LOCAL=0'] = result;
  return { result, warnings: of((l) => l.log === 'warn' || l.log === 'error') };
}

describe('node:cluster: 4 workers of one Express app, unequal prepare times', () => {
  it('by default: one poller, one StartRequests after the last worker prepared', async () => {
    const { result, warnings } = await run(true);
    expect(warnings).toEqual([]);
    expect(result['worker exits']).toBe(0);
    expect(result.StartRequests).toBe(1);
    expect(result['first StartRequests - last worker prepared (ms)']).toBeGreaterThanOrEqual(0);
    expect(result['IMDS GET/s (idle, 5 s)']).toBeLessThanOrEqual(1.1);
    expect(result['429s']).toBe(0);
    expect(result['event seen by every worker, max ms']).toBeLessThanOrEqual(1100);
  }, 90_000);

  it('FREEZEGUARD_LOCAL=0: each worker polls, and the first to prepare approves for all', async () => {
    const { result } = await run(false);
    expect(result['IMDS GET/s (idle, 5 s)']).toBeGreaterThan(3);
    // The VM was released while a worker was still finishing its jobs.
    expect(result['first StartRequests - last worker prepared (ms)']).toBeLessThan(0);
  }, 90_000);
});
