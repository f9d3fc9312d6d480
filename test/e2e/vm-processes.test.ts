import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { rehearseFreeze, startSimulator } from '@freezeguard/simulator';
import { httpStatus, signalGroup } from '@freezeguard/simulator/process';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { examples, logsOf, spawnTracked, startApp, stopAll } from '../helpers/processes.js';
import { openQueue, useRedis } from '../helpers/redis.js';
import { printTable } from '../helpers/report.js';

// An Express API and a BullMQ worker started separately on one VM (one Azure emulator),
// both examples as they ship (both `approve: 'solo'`), nothing telling either about the
// other. The worker is busy with jobs of 5 s when the freeze is announced; at approval the
// whole VM (both process groups) is stopped for 3 s. By default the VM must be approved
// once, after the worker's last job finished; FREEZEGUARD_LOCAL=0 shows the API approving
// for the VM while jobs still run. The same holds with a Redis fleet, the API in group
// `api` and the worker in group `jobs` (approval used to be decided per group).

const redis = useRedis();
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
  await stopAll();
});
const rows: Record<string, Record<string, string | number>> = {};
afterAll(() => {
  if (Object.keys(rows).length)
    printTable('An Express API and a BullMQ worker on one VM, VM stopped 3 s at approval', rows);
});

const JOBS = 6;
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForLog(proc: ReturnType<typeof spawnTracked>, pattern: RegExp) {
  const deadline = Date.now() + 20_000;
  while (!logsOf(proc).some((l) => pattern.test(l))) {
    if (proc.exitCode !== null) throw new Error(`exited: ${logsOf(proc).join('\n')}`);
    if (Date.now() > deadline) throw new Error(`no ${pattern}: ${logsOf(proc).slice(-5)}`);
    await wait(50);
  }
}

type Mode = 'local' | 'solo' | 'fleet';

async function run(mode: Mode) {
  const local = mode !== 'solo';
  const sim = await startSimulator({ resourceName: 'vm-app' });
  closers.push(() => sim.close());
  const common: Record<string, string> = {
    FREEZEGUARD_CLOUD: 'azure',
    FREEZEGUARD_IMDS_ENDPOINT: sim.url,
    FREEZEGUARD_LOG_LEVEL: 'warn',
    ...(local ? {} : { FREEZEGUARD_LOCAL: '0' }),
  };
  // Its balancer probes /health/ready every 500 ms and takes it out after one failure.
  const fleetEnv = (group: string): Record<string, string> =>
    mode === 'fleet'
      ? {
          REDIS_URL: redis.url,
          FREEZEGUARD_FLEET_GROUP: `${group}-${tag}`,
          // One member per group here: the default floor of 1 would never let it drain.
          FREEZEGUARD_MIN_IN_ROTATION: '0',
        }
      : {};
  const tag = randomUUID().slice(0, 8);
  const api = await startApp(
    'express-api',
    {
      ...common,
      ...fleetEnv('api'),
      FREEZEGUARD_LB: '500x1',
      FREEZEGUARD_DRAIN_DELAY_MS: '1000',
    },
    'api',
  );
  let probing = true;
  const prober = (async () => {
    while (probing) {
      await httpStatus(`${api.url}/health/ready`, { timeoutMs: 400 });
      await wait(500);
    }
  })();
  closers.push(() => {
    probing = false;
    return prober;
  });
  const queueName = `vm-${randomUUID()}`;
  const worker = spawnTracked(
    process.execPath,
    [join(examples, 'bullmq-worker', 'src', 'worker.js')],
    {
      ...common,
      ...fleetEnv('jobs'),
      FREEZEGUARD_LOG_LEVEL: 'info',
      REDIS_URL: redis.url,
      QUEUE: queueName,
      JOB_MS: '5000',
      CONCURRENCY: '2',
      PAUSE_TIMEOUT_MS: '20000',
    },
    'worker',
  );
  await waitForLog(worker, /worker ready/);
  const queue = openQueue(queueName, redis.url, closers);
  await queue.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: 'job', data: { i } })));
  // Two jobs running when the freeze is announced.
  while ((await queue.getActiveCount()) < 2) await wait(50);
  const stopApi = () => signalGroup(api.proc.pid!, 'SIGSTOP');
  const continueApi = () => signalGroup(api.proc.pid!, 'SIGCONT');
  const announcedAt = Date.now();
  const rehearsal = await rehearseFreeze({
    sim,
    pid: worker.pid!,
    freezeMs: 3000,
    noticeMs: 30_000,
    onStop: stopApi,
    onContinue: continueApi,
  });
  const deadline = Date.now() + 60_000;
  while ((await queue.getCompletedCount()) + (await queue.getFailedCount()) < JOBS) {
    if (Date.now() > deadline) break;
    await wait(200);
  }
  const approvals = sim.approvals.filter((a) => a.eventId === rehearsal.eventId);
  const approvedAt = approvals[0]?.at ?? Number.NaN;
  const jobs = await queue.getJobs(['completed', 'failed', 'active', 'wait']);
  const activeAtApproval = jobs.filter(
    (j) => (j.processedOn ?? Infinity) < approvedAt && (j.finishedOn ?? Infinity) > approvedAt,
  ).length;
  const execs = Object.values(await redis.client.hgetall(`${queueName}:execs`)).map(Number);
  const result = {
    approved: String(rehearsal.approved),
    'approved after the notice (ms)': approvedAt - announcedAt,
    StartRequests: approvals.length,
    'jobs running at approval': activeAtApproval,
    completed: await queue.getCompletedCount(),
    failed: await queue.getFailedCount(),
    'run twice': execs.filter((n) => n > 1).length,
  };
  const label = {
    local: 'VM-local coordination (default)',
    solo: 'FREEZEGUARD_LOCAL=0',
    fleet: 'Redis fleet, groups api and jobs',
  }[mode];
  rows[label] = result;
  return result;
}

/** One approval for the VM, once no job ran any more; every job done once. */
const ONCE_AFTER_THE_LAST_JOB = {
  approved: 'true',
  StartRequests: 1,
  'jobs running at approval': 0,
  completed: JOBS,
  failed: 0,
  'run twice': 0,
};

describe('an API and a BullMQ worker, two processes on one VM', () => {
  it("by default: approved once, after the worker's last job finished; no job runs twice", async () => {
    const r = await run('local');
    expect(r).toMatchObject(ONCE_AFTER_THE_LAST_JOB);
  }, 120_000);

  it('FREEZEGUARD_LOCAL=0: the API approves for the VM while the worker still runs jobs', async () => {
    const r = await run('solo');
    expect(r.approved).toBe('true');
    expect(r['jobs running at approval']).toBeGreaterThan(0);
  }, 120_000);

  it("a Redis fleet with the API and the worker in two groups: approved once, after the worker's last job", async () => {
    const r = await run('fleet');
    expect(r).toMatchObject(ONCE_AFTER_THE_LAST_JOB);
  }, 120_000);
});
