import { randomUUID } from 'node:crypto';
import { createGuard, silentLogger } from '@freezeguard/core';
import { FakeClock, MemorySource } from '@freezeguard/core/testing';
import { type Simulator, startSimulator } from '@freezeguard/simulator';
import { type RedisHandle, startRedis } from '@freezeguard/test-utils';
import * as bullmq6 from 'bullmq';
import * as bullmq5 from 'bullmq5';
import { Redis as IORedis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { guardConnections, guardWorker } from '../src/index.js';
import { type Child, startWorkerChild, until, wait } from './helpers.js';

let redis: RedisHandle;
let client: IORedis;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  redis = await startRedis();
  client = new IORedis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const connect = () => {
  const c = new IORedis(redis.url, { maxRetriesPerRequest: null });
  cleanups.push(() => c.disconnect());
  return c;
};

async function execCounts(queue: string): Promise<Record<string, number>> {
  const raw = await client.hgetall(`${queue}:execs`);
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
}

describe.each([
  ['bullmq 6', bullmq6],
  ['bullmq 5', bullmq5 as unknown as typeof bullmq6],
])('guardWorker with %s', (_label, { Queue, Worker }) => {
  it('pauses under load through a simulated freeze: every job completed exactly once', async () => {
    const sim: Simulator = await startSimulator({ resourceName: 'vm-1' });
    cleanups.push(() => sim.close());
    const name = `load-${randomUUID()}`;
    const queue = new Queue(name, { connection: connect() });
    cleanups.push(() => queue.close());
    const N = 400;
    await queue.addBulk(Array.from({ length: N }, (_, i) => ({ name: 'job', data: { i } })));
    const worker = new Worker(
      name,
      async (job) => {
        await client.hincrby(`${name}:execs`, job.id!, 1);
        await wait(20);
      },
      { connection: connect(), concurrency: 5 },
    );
    cleanups.push(() => worker.close(true));
    const guard = createGuard({
      source: (await import('@freezeguard/core')).azureScheduledEvents({
        endpoint: sim.url,
        pollIntervalMs: 200,
      }),
      resourceName: 'vm-1',
      drainDelayMs: 0,
      resumeWhen: 'removed',
      logger: silentLogger,
    });
    cleanups.push(() => guard.stop());
    const handle = guardWorker(guard, worker, { pauseTimeoutMs: 3000 });
    expect(handle.participant).toMatchObject({ phase: 'work', prepareTimeoutMs: 3000 });
    expect(handle.participant.resumeTimeoutMs).toBeUndefined();
    await guard.start();
    await until(
      async () => Object.keys(await execCounts(name)).length >= 60,
      15_000,
      '60 jobs done',
    );
    const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 60_000, autoStart: false });
    await until(() => guard.state === 'ready', 10_000, 'ready');
    expect(worker.isPaused()).toBe(true);
    const during = Object.keys(await execCounts(name)).length;
    await wait(700);
    expect(Object.keys(await execCounts(name)).length).toBe(during);
    expect(during).toBeLessThan(N);
    sim.complete(ev.EventId);
    await until(() => guard.state === 'idle', 10_000, 'idle');
    expect(worker.isPaused()).toBe(false);
    await until(async () => Object.keys(await execCounts(name)).length === N, 30_000, 'all jobs');
    await wait(200);
    const counts = await execCounts(name);
    expect(Object.values(counts).every((n) => n === 1)).toBe(true);
    expect(await queue.getFailedCount()).toBe(0);
    expect(guard.status().participants[0]).toMatchObject({
      prepare: { outcome: 'ok' },
      resume: { outcome: 'ok' },
    });
  }, 60_000);

  it('leaves a worker the app paused itself paused after the freeze', async () => {
    const name = `userpaused-${randomUUID()}`;
    const worker = new Worker(name, async () => {}, { connection: connect() });
    cleanups.push(() => worker.close(true));
    await worker.waitUntilReady();
    await worker.pause();
    const source = new MemorySource({ resourceName: 'vm-1' });
    const guard = createGuard({
      source,
      resourceName: 'vm-1',
      drainDelayMs: 0,
      resumeWhen: 'removed',
      logger: silentLogger,
    });
    cleanups.push(() => guard.stop());
    guardWorker(guard, worker);
    await guard.start();
    source.announce({ EventId: 'E', DurationInSeconds: -1 });
    await until(() => guard.state === 'frozen', 5_000, 'frozen');
    source.announce();
    await until(() => guard.state === 'idle', 5_000, 'idle');
    expect(worker.isPaused()).toBe(true);
  });
});

describe('guardWorker: clock behind Redis', () => {
  it('delays resume until the local clock agrees with Redis TIME', async () => {
    const name = `clock-${randomUUID()}`;
    const worker = new bullmq6.Worker(name, async () => {}, { connection: connect() });
    cleanups.push(() => worker.close(true));
    await worker.waitUntilReady();
    const clock = new FakeClock({ now: Date.now() - 60_000 }); // a minute behind Redis
    const source = new MemorySource({ resourceName: 'vm-1' });
    const guard = createGuard({
      source,
      clock,
      timers: clock,
      resourceName: 'vm-1',
      drainDelayMs: 0,
      resumeWhen: 'removed',
      logger: silentLogger,
    });
    cleanups.push(() => guard.stop());
    guardWorker(guard, worker, { clockToleranceMs: 500, clockSyncTimeoutMs: 10_000 });
    await guard.start();
    source.announce({ EventId: 'E', DurationInSeconds: -1 });
    for (let i = 0; i < 20 && guard.state !== 'frozen'; i++) await clock.advance(100);
    expect(worker.isPaused()).toBe(true);
    source.announce();
    for (let i = 0; i < 10; i++) {
      await clock.advance(100);
      await wait(10);
    }
    expect(guard.state).toBe('resuming');
    expect(worker.isPaused()).toBe(true);
    clock.setWall(Date.now()); // the host steps our clock
    for (let i = 0; i < 20 && guard.state !== 'idle'; i++) {
      await clock.advance(100);
      await wait(10);
    }
    expect(guard.state).toBe('idle');
    expect(worker.isPaused()).toBe(false);
  });

  it('names the option it rejects', () => {
    const guard = createGuard({ source: new MemorySource(), resourceName: 'vm-1' });
    expect(() => guardWorker(guard, {} as never)).toThrow(/`worker`/);
    const worker = { pause() {}, resume() {}, on() {} } as never;
    expect(() => guardWorker(guard, worker, { lockMarginMs: -1 })).toThrow(/`lockMarginMs`/);
    expect(() => guardWorker(guard, worker, { resumeTimeoutMs: 0 })).toThrow(/`resumeTimeoutMs`/);
  });

  it('rejects a second guardWorker on one worker until the first handle is closed', () => {
    const guard = createGuard({ source: new MemorySource(), resourceName: 'vm-1' });
    const other = createGuard({ source: new MemorySource(), resourceName: 'vm-1' });
    const worker = { name: 'q', pause() {}, resume() {}, on() {}, off() {}, once() {} } as never;
    const first = guardWorker(guard, worker);
    expect(() => guardWorker(guard, worker)).toThrow(/`worker`.*already guarded/);
    expect(() => guardWorker(other, worker)).toThrow(/already guarded/);
    first.close();
    const again = guardWorker(other, worker, { resumeTimeoutMs: 45_000 });
    expect(again.participant).toMatchObject({ prepareTimeoutMs: 20_000, resumeTimeoutMs: 45_000 });
    again.close();
  });
});

describe('guardWorker: Redis down during the freeze', () => {
  it('logs and retries, never crashes, and resumes the worker once Redis is back', async () => {
    let own = await startRedis({ own: true });
    cleanups.push(() => own.stop());
    const port = own.port;
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(() => process.off('unhandledRejection', onUnhandled));
    const connection = new IORedis(own.url, {
      maxRetriesPerRequest: null,
      retryStrategy: () => 200,
    });
    cleanups.push(() => connection.disconnect());
    const name = `down-${randomUUID()}`;
    const worker = new bullmq6.Worker(name, async () => 'ok', { connection });
    worker.on('error', () => {}); // BullMQ reports the outage here; the app decides what to do
    cleanups.push(() => worker.close(true));
    await worker.waitUntilReady();
    const source = new MemorySource({ resourceName: 'vm-1' });
    const warnings: string[] = [];
    const logger = {
      ...silentLogger,
      warn: (_o: object | string, m?: string) => warnings.push(String(m ?? _o)),
    };
    const guard = createGuard({
      source,
      resourceName: 'vm-1',
      drainDelayMs: 0,
      resumeWhen: 'removed',
      logger,
    });
    cleanups.push(() => guard.stop());
    guardWorker(guard, worker, {
      pauseTimeoutMs: 15_000,
      clockSyncTimeoutMs: 500,
      pingTimeoutMs: 300,
    });
    await guard.start();
    source.announce({ EventId: 'E', DurationInSeconds: -1 });
    await until(() => guard.state === 'frozen', 5_000, 'frozen');
    await own.stop();
    source.announce();
    await wait(1_500);
    expect(guard.state).toBe('resuming');
    expect(worker.isPaused()).toBe(true);
    own = await startRedis({ own: true, port });
    await until(() => guard.state === 'idle', 15_000, 'idle after Redis came back');
    expect(worker.isPaused()).toBe(false);
    expect(warnings.some((w) => /PING|Redis TIME/.test(w))).toBe(true);
    const queue = new bullmq6.Queue(name, { connection: connect2(own.url) });
    cleanups.push(() => queue.close());
    const job = await queue.add('after', {});
    await until(
      async () => (await job.getState()) === 'completed',
      10_000,
      'a job after the outage',
    );
    expect(unhandled).toEqual([]);
  }, 40_000);
});

function connect2(url: string) {
  const c = new IORedis(url, { maxRetriesPerRequest: null });
  cleanups.push(() => c.disconnect());
  return c;
}

describe('a real freeze of a worker process (SIGSTOP longer than its lock)', () => {
  const children: Child[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) await c.stop();
  });

  async function drill(guarded: boolean) {
    const sim = await startSimulator({ resourceName: 'worker-a' });
    cleanups.push(() => sim.close());
    const name = `stall-${guarded ? 'guarded' : 'unguarded'}-${randomUUID()}`;
    const env = {
      REDIS_URL: redis.url,
      QUEUE: name,
      JOB_MS: '4000',
      FREEZEGUARD_IMDS_ENDPOINT: sim.url,
      FREEZEGUARD_RESOURCE_NAME: 'worker-a',
    };
    const a = startWorkerChild({ ...env, LABEL: 'A', GUARDED: guarded ? '1' : '0' });
    children.push(a);
    await a.waitFor((m) => m.ready === 'A', 15_000, 'A ready');
    const queue = new bullmq6.Queue(name, { connection: connect() });
    cleanups.push(() => queue.close());
    await queue.addBulk([1, 2, 3, 4].map((i) => ({ name: 'job', data: { i } })));
    await until(
      () => a.messages.filter((m) => 'active' in m).length === 4,
      10_000,
      'A holds 4 jobs',
    );
    const b = startWorkerChild({ ...env, LABEL: 'B', GUARDED: '0' });
    children.push(b);
    await b.waitFor((m) => m.ready === 'B', 15_000, 'B ready');
    if (guarded) {
      const ev = sim.schedule({
        type: 'Freeze',
        notBeforeInMs: 30_000,
        durationInSeconds: 5,
        autoStart: false,
      });
      await a.waitFor((m) => m.state === 'ready', 10_000, 'A prepared');
      sim.start(ev.EventId);
      cleanups.push(() => sim.events().length > 0 && sim.complete(ev.EventId));
    }
    a.proc.kill('SIGSTOP');
    await wait(5_000);
    a.proc.kill('SIGCONT');
    await until(
      async () => (await queue.getCompletedCount()) + (await queue.getFailedCount()) >= 4,
      30_000,
      'all 4 jobs settled',
    );
    await wait(500);
    const counts = await execCounts(name);
    return {
      runTwice: Object.values(counts).filter((n) => n > 1).length,
      lost: 4 - Object.keys(counts).length,
      failed: await queue.getFailedCount(),
      completed: await queue.getCompletedCount(),
      ranOnB: Object.keys(await client.hgetall(`${name}:by:B`)).length,
      a,
    };
  }

  it('unguarded: the harness sees jobs run twice', async () => {
    const r = await drill(false);
    expect(r.runTwice).toBeGreaterThanOrEqual(1);
    expect(r.ranOnB).toBeGreaterThanOrEqual(1);
  }, 90_000);

  it('guarded: zero run twice, zero lost, zero failed — jobs outlive the pause deadline', async () => {
    const r = await drill(true);
    expect({
      runTwice: r.runTwice,
      lost: r.lost,
      failed: r.failed,
      completed: r.completed,
      ranOnB: r.ranOnB,
    }).toEqual({
      runTwice: 0,
      lost: 0,
      failed: 0,
      completed: 4,
      ranOnB: 0,
    });
    expect(
      r.a.messages.some((m) => typeof m.pause === 'number' && (m.pause as number) > 4000),
    ).toBe(true);
  }, 90_000);
});

describe('several workers and a Queue/QueueEvents pair in one process', () => {
  it('pauses every worker, keeps queue events flowing after the freeze', async () => {
    const name = `multi-${randomUUID()}`;
    const { Queue, QueueEvents, Worker } = bullmq6;
    const queue = new Queue(name, { connection: connect() });
    const events = new QueueEvents(name, { connection: connect() });
    cleanups.push(() => events.close());
    cleanups.push(() => queue.close());
    await events.waitUntilReady();
    const workers = [1, 2].map(
      () => new Worker(name, async () => 'done', { connection: connect() }),
    );
    for (const w of workers) cleanups.push(() => w.close(true));
    const source = new MemorySource({ resourceName: 'vm-1' });
    const guard = createGuard({
      source,
      resourceName: 'vm-1',
      drainDelayMs: 0,
      resumeWhen: 'removed',
      logger: silentLogger,
    });
    cleanups.push(() => guard.stop());
    for (const w of workers) guardWorker(guard, w);
    guardConnections(guard, [queue, events]);
    await guard.start();
    expect(guard.status().participants.map((p) => p.phase)).toEqual(['work', 'work', 'work']);
    source.announce({ EventId: 'E', DurationInSeconds: -1 });
    await until(() => guard.state === 'frozen', 5_000, 'frozen');
    expect(workers.every((w) => w.isPaused())).toBe(true);
    const job = await queue.add('during', {});
    await wait(300);
    expect(await job.getState()).toBe('waiting');
    const completed = new Promise<string>((resolve) =>
      events.on('completed', ({ jobId }) => resolve(jobId)),
    );
    source.announce();
    await until(() => guard.state === 'idle', 5_000, 'idle');
    expect(workers.every((w) => !w.isPaused())).toBe(true);
    expect(await completed).toBe(job.id);
    expect(guard.status().participants.every((p) => p.resume?.outcome === 'ok')).toBe(true);
  });
});
