import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@freezeguard/simulator/process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { behindHaproxy, loadThroughFreeze, twoAzureVms } from '../helpers/load.js';
import {
  type App,
  examples,
  logsOf,
  spawnTracked,
  startApp,
  startHaproxy,
  stopAll,
  waitForStatus,
} from '../helpers/processes.js';
import { getsPerSecond, printTable } from '../helpers/report.js';

// PM2 cluster mode, the way it is deployed: `pm2-runtime start server.js -i 4` runs four
// workers of the express-api example on VM A, each configured as a single-process app.
// HAProxy balances A and a second VM (B, one process); at approval the whole PM2 process
// tree of A is stopped for 5 s (SIGSTOP to its process group), as a freeze does.

const require = createRequire(import.meta.url);
const pm2Runtime = join(require.resolve('pm2/package.json'), '..', 'bin', 'pm2-runtime');
const FREEZE_MS = 5000;
const RATE = 100;
const WORKERS = 4;

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
  await stopAll();
});
const rows: Record<string, Record<string, string | number>> = {};
afterAll(() => {
  if (Object.keys(rows).length)
    printTable(
      `PM2 cluster mode (-i ${WORKERS}) behind HAProxy, ${RATE} req/s, the PM2 tree stopped ${FREEZE_MS / 1000} s`,
      rows,
    );
});

async function pm2Cluster(env: Record<string, string>): Promise<App> {
  const home = mkdtempSync(join(tmpdir(), 'fg-pm2-'));
  closers.push(() => rmSync(home, { recursive: true, force: true }));
  const port = await freePort();
  const proc = spawnTracked(
    process.execPath,
    [pm2Runtime, 'start', join(examples, 'express-api', 'src', 'server.js'), '-i', String(WORKERS)],
    {
      PM2_HOME: home,
      FREEZEGUARD_CLOUD: 'azure',
      FREEZEGUARD_LOG_LEVEL: 'info',
      ...env,
      PORT: String(port),
    },
    'pm2',
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForStatus(`${url}/health/ready`, 200, 30_000, proc);
  // Every worker listening, not just the first.
  const deadline = Date.now() + 30_000;
  while (logsOf(proc).filter((l) => l.includes('express-api listening')).length < WORKERS) {
    if (Date.now() > deadline)
      throw new Error(`PM2 workers did not start: ${logsOf(proc).slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, port, url };
}

async function drill(guarded: boolean) {
  const [simA, simB] = await twoAzureVms(closers);
  const common = behindHaproxy(guarded);
  const a = await pm2Cluster({ ...common, FREEZEGUARD_IMDS_ENDPOINT: simA.url });
  const b = await startApp('express-api', { ...common, FREEZEGUARD_IMDS_ENDPOINT: simB.url }, 'B');
  const lb = await startHaproxy([a, b]);
  closers.push(() => lb.stop());
  // Start-up is over: from here one poller must serve the VM through the freeze.
  const settledAt = Date.now();
  const { rehearsal, result } = await loadThroughFreeze(
    `${lb.url}/api/items`,
    { rate: RATE, durationS: 16 },
    { sim: simA, pid: a.proc.pid!, freezeMs: FREEZE_MS, noticeMs: 8000 },
  );
  const approvals = simA.approvals.filter((x) => x.eventId === rehearsal.eventId);
  // A worker's text log line starts with its ISO time.
  const elections = logsOf(a.proc)
    .filter((l) => l.includes('this process polls the metadata service for its VM'))
    .map((l) => Date.parse(l.slice(0, 24)));
  const until = approvals[0]?.at ?? Date.now();
  const gets = getsPerSecond(
    simA.requests
      .filter(
        (r) =>
          r.at >= settledAt && r.at < until && r.method === 'GET' && r.path.includes('scheduled'),
      )
      .map((r) => r.at),
  );
  return {
    approved: String(rehearsal.approved),
    StartRequests: approvals.length,
    // A poller that does not welcome the others within 1.5 s (a loaded start-up) is
    // replaced, fenced by its term: more than one here is allowed, none after it.
    'pollers elected at start-up': elections.filter((t) => t < settledAt).length,
    'pollers elected after': elections.filter((t) => t >= settledAt).length,
    'IMDS GETs before approval': gets.gets,
    'IMDS GET/s before approval': gets.perSecond,
    requests: result.requests.total,
    '2xx': result['2xx'],
    'non-2xx': result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    'p99 ms': result.latency.p99,
  };
}

describe(`PM2 cluster mode, ${WORKERS} workers of express-api on one VM`, () => {
  it('guarded: one poller, one StartRequests, no failed request; unguarded: requests fail', async () => {
    const guarded = await drill(true);
    rows.guarded = guarded;
    await stopAll();
    while (closers.length) await closers.pop()!();
    const unguarded = await drill(false);
    rows.unguarded = unguarded;
    expect(guarded.approved).toBe('true');
    expect(guarded.StartRequests).toBe(1);
    expect(guarded['pollers elected after']).toBe(0);
    // One poller every 1 s: a second one would make this about 2.
    expect(guarded['IMDS GETs before approval']).toBeGreaterThanOrEqual(2);
    expect(guarded['IMDS GET/s before approval']).toBeLessThanOrEqual(1.1);
    expect(guarded.requests).toBeGreaterThan(RATE * 10);
    expect({
      non2xx: guarded['non-2xx'],
      errors: guarded.errors,
      timeouts: guarded.timeouts,
    }).toEqual({ non2xx: 0, errors: 0, timeouts: 0 });
    // The harness must be able to see a failure, or the guarded result proves nothing.
    expect(unguarded['non-2xx'] + unguarded.errors + unguarded.timeouts).toBeGreaterThan(0);
  }, 180_000);
});
