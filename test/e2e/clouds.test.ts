import {
  type AwsSimulator,
  type GcpSimulator,
  rehearseFreeze,
  rehearseShutdown,
  startSimulator,
} from '@freezeguard/simulator';
import { httpStatus } from '@freezeguard/simulator/process';
import autocannon from 'autocannon';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type App, type Haproxy, startApp, startHaproxy, stopAll } from '../helpers/processes.js';
import { printTable } from '../helpers/report.js';

// The same HAProxy comparison as http.test.ts, on the other two clouds: each instance
// watches its own GCE metadata server or EC2 IMDS emulator through FREEZEGUARD_CLOUD.

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
  await stopAll();
});

const RATE = 100;
const EXAMPLE = 'express-api';
const FREEZE_MS = 5000;
const SPOT_NOTICE_MS = 8000;

interface Outcome {
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  p99: number;
  max: number;
  /** ms before the instance went away that A's readiness failed (spot only). */
  drainedAheadMs?: number | null;
  /** ms before the instance went away that A was prepared (liveness → shutting-down). */
  preparedAheadMs?: number | null;
  /** `/live` answered 503 at some point (it must not: maintenance never fails liveness). */
  liveFailed?: boolean;
  /** Token PUTs of A left unanswered, and GETs of A answered without a token (spot only). */
  unansweredPuts?: number;
  tokenlessGets?: number;
}

async function pair(
  cloud: 'gcp' | 'aws',
  guarded: boolean,
): Promise<{ a: App; simA: GcpSimulator | AwsSimulator; lb: Haproxy }> {
  const start = (name: string, container = false) =>
    cloud === 'gcp'
      ? startSimulator({ cloud: 'gcp', resourceName: name })
      : container
        ? // A runs in a container behind the instance's IMDSv2 hop limit of 1: the answer to
          // its token PUT never arrives, and only IMDSv1 GETs (still allowed) are answered.
          startSimulator({
            cloud: 'aws',
            resourceName: name,
            httpTokens: 'optional',
            httpPutResponseHopLimit: 1,
            clientHops: 2,
          })
        : startSimulator({ cloud: 'aws', resourceName: name, httpTokens: 'required' });
  const simA = await start('vm-a', true);
  const simB = await start('vm-b');
  closers.push(
    () => simA.close(),
    () => simB.close(),
  );
  const common: Record<string, string> = {
    FREEZEGUARD_CLOUD: cloud,
    FREEZEGUARD_DRAIN_DELAY_MS: '2500',
    ...(guarded ? {} : { FREEZEGUARD_DISABLED: '1' }),
  };
  // No FREEZEGUARD_RESOURCE_NAME: the guard asks instance/name or instance-id.
  // A logs its state changes: the test sees when every phase of its prepare was done.
  const a = await startApp(
    EXAMPLE,
    { ...common, FREEZEGUARD_IMDS_ENDPOINT: simA.url, FREEZEGUARD_LOG_LEVEL: 'info' },
    'A',
  );
  const b = await startApp(EXAMPLE, { ...common, FREEZEGUARD_IMDS_ENDPOINT: simB.url }, 'B');
  const lb = await startHaproxy([a, b]);
  closers.push(() => lb.stop());
  return { a, simA, lb };
}

function load(url: string) {
  return autocannon({
    url: `${url}/api/items`,
    connections: 20,
    overallRate: RATE,
    duration: 15,
    timeout: 2,
  });
}

function outcome(result: autocannon.Result): Outcome {
  return {
    requests: result.requests.total,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    p99: result.latency.p99,
    max: result.latency.max,
  };
}

/** GCE live migration of instance A: MIGRATE announced, 5 s blackout (SIGSTOP), NONE. */
async function liveMigration(guarded: boolean): Promise<Outcome> {
  const { a, simA, lb } = await pair('gcp', guarded);
  const running = load(lb.url);
  await new Promise((r) => setTimeout(r, 1000));
  await rehearseFreeze({ sim: simA, pid: a.proc.pid!, freezeMs: FREEZE_MS, noticeMs: 4000 });
  return outcome(await running);
}

/** EC2 Spot interruption of instance A: notice, then at its time the instance is gone. */
async function spotInterruption(guarded: boolean): Promise<Outcome> {
  const { a, simA, lb } = await pair('aws', guarded);
  const running = load(lb.url);
  await new Promise((r) => setTimeout(r, 1000));
  // Watch A's own probes during the notice, as its load balancer and a supervisor would,
  // and its log for the state that says every phase is prepared.
  let notReadyAt: number | null = null;
  let liveFailed = false;
  let preparedAt: number | null = null;
  const onLog = (d: Buffer) => {
    if (/freezeguard: \S+ (→|->) shutting-down/.test(d.toString()))
      preparedAt ??= performance.now();
  };
  a.proc.stdout!.on('data', onLog);
  a.proc.stderr!.on('data', onLog);
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const [ready, live] = await Promise.all([
        httpStatus(`${a.url}/health/ready`, { timeoutMs: 300 }),
        httpStatus(`${a.url}/health/live`, { timeoutMs: 300 }),
      ]);
      const now = performance.now();
      if (ready === 503) notReadyAt ??= now;
      if (live === 503) liveFailed = true;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  const r = await rehearseShutdown({ sim: simA, pid: a.proc.pid!, noticeMs: SPOT_NOTICE_MS });
  watching = false;
  await watcher;
  const result = outcome(await running);
  result.drainedAheadMs = notReadyAt === null ? null : Math.round(r.goneAt - notReadyAt);
  result.preparedAheadMs = preparedAt === null ? null : Math.round(r.goneAt - preparedAt);
  result.liveFailed = liveFailed;
  const sim = simA as AwsSimulator;
  result.unansweredPuts = sim.unansweredPuts;
  result.tokenlessGets = sim.requests.filter(
    (q) => q.method === 'GET' && q.status === 200 && !q.headers['x-aws-ec2-metadata-token'],
  ).length;
  return result;
}

const rows: Record<string, Record<string, string | number>> = {};
afterAll(() => {
  printTable(
    `${EXAMPLE} ×2 behind HAProxy, ${RATE} req/s: GCE live migration (5 s blackout) and EC2 Spot interruption of instance A (${SPOT_NOTICE_MS / 1000} s notice)`,
    rows,
  );
});

function record(name: string, o: Outcome): void {
  rows[name] = {
    requests: o.requests,
    '2xx': o.ok,
    'non-2xx': o.non2xx,
    errors: o.errors,
    timeouts: o.timeouts,
    'p99 ms': o.p99,
    'max ms': o.max,
    ...(o.drainedAheadMs === undefined
      ? {}
      : {
          'drained before gone ms': o.drainedAheadMs ?? '—',
          'prepared before gone ms': o.preparedAheadMs ?? '—',
        }),
  };
}

function expectNoFailure(o: Outcome): void {
  expect(o.requests).toBeGreaterThan(RATE * 10);
  expect({ non2xx: o.non2xx, errors: o.errors, timeouts: o.timeouts }).toEqual({
    non2xx: 0,
    errors: 0,
    timeouts: 0,
  });
  expect(o.p99).toBeLessThan(1000);
}

describe('the other clouds behind HAProxy', () => {
  it('GCE live migration: guarded drains, sits out the blackout and comes back without a failed request; unguarded fails', async () => {
    const guarded = await liveMigration(true);
    await stopAll();
    while (closers.length) await closers.pop()!();
    const unguarded = await liveMigration(false);
    record('GCE live migration, guarded', guarded);
    record('GCE live migration, unguarded', unguarded);
    expectNoFailure(guarded);
    const damage = unguarded.non2xx + unguarded.errors + unguarded.timeouts;
    expect(damage > 0 || unguarded.p99 >= FREEZE_MS).toBe(true);
  });

  it('EC2 Spot interruption, from a container behind an IMDSv2 hop limit of 1: guarded is drained and prepared before the time, no failed request; unguarded fails', async () => {
    const guarded = await spotInterruption(true);
    await stopAll();
    while (closers.length) await closers.pop()!();
    const unguarded = await spotInterruption(false);
    record('EC2 Spot interruption, guarded', guarded);
    record('EC2 Spot interruption, unguarded', unguarded);
    expectNoFailure(guarded);
    // Out of rotation for at least HAProxy's 2 failed checks 500 ms apart before it went.
    expect(guarded.drainedAheadMs).toBeGreaterThan(1500);
    // Every phase (traffic, work, data) prepared before the time.
    expect(guarded.preparedAheadMs).toBeGreaterThan(0);
    expect(guarded.liveFailed).toBe(false);
    // It saw the notice through IMDSv1 GETs: its token PUTs went unanswered.
    expect(guarded.unansweredPuts).toBeGreaterThan(0);
    expect(guarded.tokenlessGets).toBeGreaterThan(0);
    expect(unguarded.drainedAheadMs).toBeNull();
    const damage = unguarded.non2xx + unguarded.errors + unguarded.timeouts;
    expect(damage).toBeGreaterThan(0);
  });
});
