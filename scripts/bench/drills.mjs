// Drills with real processes: the express example frozen by the simulator, BullMQ workers
// stopped mid-job, and the pause measurement (SIGSTOP and a QEMU VM).
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runDrill, startSimulator } from '@freezeguard/simulator';
import { startRedis } from '@freezeguard/test-utils';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { median, percentile, pick, round, startNode, until, wait } from './lib.mjs';

const expressApi = fileURLToPath(
  new URL('../../examples/express-api/src/server.js', import.meta.url),
);
const workerChild = fileURLToPath(
  new URL('../../packages/bullmq/test/fixtures/worker-child.mjs', import.meta.url),
);

// Drills of the express example: SIGCONT → healthy, and time out of rotation vs its floor.
export async function drills(row) {
  const drainDelayMs = 2000;
  const freezeMs = 2000;
  const recovered = [];
  const outOfRotation = [];
  const n = pick(10, 3, 1);
  for (let i = 0; i < n; i++) {
    const report = await runDrill({
      command: [process.execPath, expressApi],
      freezeMs,
      noticeMs: 4000,
      env: { FREEZEGUARD_DRAIN_DELAY_MS: String(drainDelayMs), FREEZEGUARD_LOG_LEVEL: 'warn' },
    });
    if (!report.passed) throw new Error(`drill ${i + 1} failed: ${report.verdict}`);
    recovered.push(report.recoveredAfterMs ?? Number.NaN);
    outOfRotation.push(report.outOfRotationMs ?? Number.NaN);
  }
  const floor = drainDelayMs + freezeMs;
  row('drill', `SIGCONT → /ready 200, p50 (${n} drills)`, `${round(median(recovered))} ms`);
  row(
    'drill',
    `SIGCONT → /ready 200, p99 (${n} drills)`,
    `${round(percentile(recovered, 99))} ms`,
    '< 5000 ms (drill limit)',
  );
  row(
    'drill',
    `out of rotation per freeze, median (floor: drain ${drainDelayMs} + freeze ${freezeMs} ms)`,
    `${round(median(outOfRotation))} ms (${round(median(outOfRotation) / floor, 2)} × floor)`,
  );
}

function worker(env) {
  const w = startNode(workerChild, env);
  const messages = [];
  createInterface({ input: w.proc.stdout }).on('line', (line) => {
    try {
      messages.push({ at: performance.now(), ...JSON.parse(line) });
    } catch {}
  });
  const waitFor = async (pred, what, timeoutMs = 20_000) => {
    await until(() => messages.some(pred), timeoutMs, `worker ${env.LABEL}: ${what}`);
    return messages.find(pred);
  };
  return { ...w, messages, waitFor };
}

// BullMQ: duplicates/lost/failed across drills, guarded vs unguarded.
export async function bullmq(row) {
  const redis = await startRedis();
  const counter = new Redis(redis.url);
  const drillsPer = pick(20, 3, 1);
  try {
    for (const guarded of [true, false]) {
      const totals = { runTwice: 0, lost: 0, failed: 0, jobs: 0 };
      for (let d = 0; d < drillsPer; d++) {
        const sim = await startSimulator({ resourceName: 'worker-a' });
        const name = `bench-${randomUUID()}`;
        const env = {
          REDIS_URL: redis.url,
          QUEUE: name,
          JOB_MS: '4000',
          FREEZEGUARD_IMDS_ENDPOINT: sim.url,
          FREEZEGUARD_RESOURCE_NAME: 'worker-a',
        };
        const a = worker({ ...env, LABEL: 'A', GUARDED: guarded ? '1' : '0' });
        let b = null;
        const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
        const queue = new Queue(name, { connection });
        try {
          await a.waitFor((m) => m.ready === 'A', 'ready');
          await queue.addBulk([1, 2, 3, 4].map((i) => ({ name: 'job', data: { i } })));
          await until(
            () => a.messages.filter((m) => 'active' in m).length >= 4,
            20_000,
            'worker A to take 4 jobs',
          );
          b = worker({ ...env, LABEL: 'B', GUARDED: '0' });
          await b.waitFor((m) => m.ready === 'B', 'ready');
          if (guarded) {
            const ev = sim.schedule({
              type: 'Freeze',
              notBeforeInMs: 30_000,
              durationInSeconds: 5,
              autoStart: false,
            });
            await a.waitFor((m) => m.state === 'ready', 'prepared');
            sim.start(ev.EventId);
          }
          process.kill(a.proc.pid, 'SIGSTOP');
          await wait(5000);
          process.kill(a.proc.pid, 'SIGCONT');
          const deadline = Date.now() + 30_000;
          while (
            (await queue.getCompletedCount()) + (await queue.getFailedCount()) < 4 &&
            Date.now() < deadline
          )
            await wait(100);
          await wait(300);
          const execs = Object.values(await counter.hgetall(`${name}:execs`)).map(Number);
          totals.runTwice += execs.filter((x) => x > 1).length;
          totals.failed += await queue.getFailedCount();
          totals.lost += 4 - (await queue.getCompletedCount()) - (await queue.getFailedCount());
          totals.jobs += 4;
        } finally {
          await a.stop();
          await b?.stop();
          await queue.close();
          connection.disconnect();
          await sim.close();
        }
      }
      row(
        'bullmq',
        `${guarded ? 'guarded' : 'unguarded'}: jobs run twice / lost / failed over ${drillsPer} drills (${totals.jobs} jobs)`,
        `${totals.runTwice} / ${totals.lost} / ${totals.failed}`,
        guarded ? '0 / 0 / 0' : '',
      );
    }
  } finally {
    counter.disconnect();
    await redis.stop();
  }
}

// SIGCONT → the guarded worker takes jobs again (a backlog is waiting). As on Azure, the
// event leaves the document right after the freeze.
export async function bullmqResume(row) {
  const redis = await startRedis();
  const samples = [];
  try {
    for (let i = 0; i < pick(5, 2, 1); i++) {
      const sim = await startSimulator({ resourceName: 'worker-a' });
      const name = `bench-resume-${randomUUID()}`;
      const a = worker({
        REDIS_URL: redis.url,
        QUEUE: name,
        JOB_MS: '20',
        GUARDED: '1',
        LABEL: 'A',
        FREEZEGUARD_IMDS_ENDPOINT: sim.url,
        FREEZEGUARD_RESOURCE_NAME: 'worker-a',
      });
      const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
      const queue = new Queue(name, { connection });
      try {
        await a.waitFor((m) => m.ready === 'A', 'ready');
        const ev = sim.schedule({
          type: 'Freeze',
          notBeforeInMs: 30_000,
          durationInSeconds: 2,
          autoStart: false,
        });
        await a.waitFor((m) => m.state === 'ready', 'prepared');
        await queue.addBulk(Array.from({ length: 50 }, (_, j) => ({ name: 'job', data: { j } })));
        sim.start(ev.EventId);
        process.kill(a.proc.pid, 'SIGSTOP');
        await wait(2000);
        process.kill(a.proc.pid, 'SIGCONT');
        const contAt = performance.now();
        sim.complete(ev.EventId);
        const first = await a.waitFor((m) => 'active' in m && m.at > contAt, 'a job after SIGCONT');
        samples.push(first.at - contAt);
      } finally {
        await a.stop();
        await queue.close();
        connection.disconnect();
        await sim.close();
      }
    }
  } finally {
    await redis.stop();
  }
  row(
    'bullmq',
    'SIGCONT → guarded worker takes jobs again, median',
    `${round(median(samples))} ms (max ${round(Math.max(...samples))})`,
    '< 1000 ms',
  );
}
