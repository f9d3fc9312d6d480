import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { rehearseFreeze, startSimulator } from '@freezeguard/simulator';
import { afterEach, describe, expect, it } from 'vitest';
import { examples, logsOf, spawnTracked, stopAll } from '../helpers/processes.js';
import { openQueue, useRedis } from '../helpers/redis.js';
import { printTable } from '../helpers/report.js';

const redis = useRedis();
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
  await stopAll();
});

const JOBS = 16;
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startWorker(label: string, env: Record<string, string>) {
  const proc = spawnTracked(
    process.execPath,
    [join(examples, 'bullmq-worker', 'src', 'worker.js')],
    { ...env, WORKER_LABEL: label },
    label,
  );
  return proc;
}

async function waitForLog(
  proc: ReturnType<typeof startWorker>,
  pattern: RegExp,
  timeoutMs = 15_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!logsOf(proc).some((l) => pattern.test(l))) {
    if (proc.exitCode !== null) throw new Error(`worker exited: ${logsOf(proc).join('\n')}`);
    if (Date.now() > deadline)
      throw new Error(`no ${pattern} in worker logs: ${logsOf(proc).slice(-5).join('\n')}`);
    await wait(50);
  }
}

/** Worker A (guarded or not) and worker B share a queue with short locks; A is frozen 5 s. */
async function drill(guarded: boolean) {
  const sim = await startSimulator({ resourceName: 'worker-a' });
  closers.push(() => sim.close());
  const queueName = `e2e-${guarded ? 'guarded' : 'unguarded'}-${randomUUID()}`;
  const env = {
    REDIS_URL: redis.url,
    QUEUE: queueName,
    JOB_MS: '6000',
    CONCURRENCY: '4',
    LOCK_DURATION_MS: '2000',
    STALLED_INTERVAL_MS: '1000',
    PAUSE_TIMEOUT_MS: '1500',
    FREEZEGUARD_LOG_LEVEL: 'info',
    FREEZEGUARD_IMDS_ENDPOINT: sim.url,
    FREEZEGUARD_RESOURCE_NAME: 'worker-a',
  };
  const a = startWorker('A', { ...env, ...(guarded ? {} : { FREEZEGUARD_DISABLED: '1' }) });
  await waitForLog(a, /worker ready/);
  const queue = openQueue(queueName, redis.url, closers);
  await queue.addBulk(Array.from({ length: JOBS }, (_, i) => ({ name: 'job', data: { i } })));
  await wait(300);
  const b = startWorker('B', { ...env, FREEZEGUARD_DISABLED: '1' });
  await waitForLog(b, /worker ready/);
  const rehearsal = await rehearseFreeze({ sim, pid: a.pid!, freezeMs: 5000, noticeMs: 4000 });
  const deadline = Date.now() + 60_000;
  while (
    (await queue.getCompletedCount()) + (await queue.getFailedCount()) < JOBS &&
    Date.now() < deadline
  )
    await wait(200);
  await wait(500);
  const execs = Object.values(await redis.client.hgetall(`${queueName}:execs`)).map(Number);
  return {
    runTwice: execs.filter((n) => n > 1).length,
    lost: JOBS - (await queue.getCompletedCount()) - (await queue.getFailedCount()),
    failed: await queue.getFailedCount(),
    completed: await queue.getCompletedCount(),
    executions: execs.reduce((s, n) => s + n, 0),
    approved: rehearsal.approved,
  };
}

describe('bullmq-worker example through a freeze (two workers, locks 2 s, A stopped 5 s)', () => {
  it('guarded: every job exactly once; unguarded: jobs run twice', async () => {
    const guarded = await drill(true);
    await stopAll();
    while (closers.length) await closers.pop()!();
    const unguarded = await drill(false);
    printTable(`BullMQ, ${JOBS} jobs of 6 s, worker A frozen 5 s with lockDuration 2 s`, {
      guarded: { ...guarded, approved: String(guarded.approved) },
      unguarded: { ...unguarded, approved: String(unguarded.approved) },
    });
    expect({
      runTwice: guarded.runTwice,
      lost: guarded.lost,
      failed: guarded.failed,
      completed: guarded.completed,
    }).toEqual({
      runTwice: 0,
      lost: 0,
      failed: 0,
      completed: JOBS,
    });
    expect(unguarded.runTwice).toBeGreaterThanOrEqual(1);
  });
});
