import { randomUUID } from 'node:crypto';
import { type Clock, createGuard, type Logger, systemClock } from '@freezeguard/core';
import { MemorySource } from '@freezeguard/core/testing';
import { type RedisHandle, startRedis } from '@freezeguard/test-utils';
import { GlideClient, Logger as GlideLogger } from '@valkey/valkey-glide';
import * as bullmq6 from 'bullmq';
import * as bullmq5 from 'bullmq5';
import { Redis as IORedis5 } from 'ioredis';
import { Redis as IORedis6 } from 'ioredis6';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { guardConnections, guardWorker } from '../src/index.js';
import { until } from './helpers.js';

// Every Redis client BullMQ runs on in Node: bullmq 5 takes ioredis; bullmq 6 takes
// ioredis 5/6 and node-redis instances as they are, and Valkey GLIDE through its adapter.
// (Bun's built-in client needs Bun; BullMQ's PostgreSQL backend has no Redis at all.)

let redis: RedisHandle;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
beforeAll(async () => {
  // GLIDE's native core logs its own reconnects to stdout; the tests read outcomes instead.
  GlideLogger.setLoggerConfig('off');
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  while (cleanups.length) {
    const cleanup = cleanups.pop()!;
    await Promise.resolve()
      .then(cleanup)
      .catch(() => {});
  }
});

type Kit = typeof bullmq6;
interface Kind {
  readonly kit: Kit;
  connect(): Promise<unknown>;
}

const kinds: [string, Kind][] = [
  [
    'bullmq 5 + ioredis 5',
    {
      kit: bullmq5 as unknown as Kit,
      connect: async () => track(new IORedis5(redis.url, { maxRetriesPerRequest: null })),
    },
  ],
  [
    'bullmq 6 + ioredis 5',
    {
      kit: bullmq6,
      connect: async () => track(new IORedis5(redis.url, { maxRetriesPerRequest: null })),
    },
  ],
  [
    'bullmq 6 + ioredis 6',
    {
      kit: bullmq6,
      connect: async () => track(new IORedis6(redis.url, { maxRetriesPerRequest: null })),
    },
  ],
  [
    'bullmq 6 + node-redis',
    {
      kit: bullmq6,
      connect: async () => {
        const client = createClient({ url: redis.url });
        client.on('error', () => {});
        await client.connect();
        cleanups.push(() => client.destroy());
        return client;
      },
    },
  ],
  [
    'bullmq 6 + Valkey GLIDE',
    {
      kit: bullmq6,
      connect: async () => {
        const client = await GlideClient.createClient({
          addresses: [{ host: redis.host, port: redis.port }],
        });
        cleanups.push(() => client.close());
        return bullmq6.createValkeyGlideClient(client);
      },
    },
  ],
];

function track<T extends { disconnect(): void }>(client: T): T {
  cleanups.push(() => client.disconnect());
  return client;
}

function recording(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const record = (o: object | string, m?: string) =>
    warnings.push(typeof o === 'string' ? o : `${m} ${JSON.stringify(o)}`);
  return { debug() {}, info() {}, warn: record, error: record, warnings };
}

async function cycle(kind: Kind, clock: Clock, options: Parameters<typeof guardWorker>[2] = {}) {
  const { Queue, QueueEvents, Worker } = kind.kit;
  const name = `clients-${randomUUID()}`;
  const worker = new Worker(name, async () => 'done', {
    connection: (await kind.connect()) as never,
  });
  worker.on('error', () => {});
  cleanups.push(() => worker.close(true));
  const queue = new Queue(name, { connection: (await kind.connect()) as never });
  cleanups.push(() => queue.close());
  const events = new QueueEvents(name, { connection: (await kind.connect()) as never });
  cleanups.push(() => events.close());
  await worker.waitUntilReady();
  const source = new MemorySource({ resourceName: 'vm-1' });
  const logger = recording();
  const guard = createGuard({
    source,
    clock,
    resourceName: 'vm-1',
    drainDelayMs: 0,
    resumeWhen: 'removed',
    logger,
  });
  cleanups.push(() => guard.stop());
  guardWorker(guard, worker, options);
  guardConnections(guard, [queue, events]);
  await guard.start();
  source.announce({ EventId: 'E', DurationInSeconds: 5 });
  await until(() => guard.state === 'frozen', 10_000, 'frozen');
  expect(worker.isPaused()).toBe(true);
  source.announce();
  await until(() => guard.state === 'idle', 20_000, 'idle').catch((err) => {
    throw new Error(
      `${err.message}; ${JSON.stringify(guard.status().participants)}; ${logger.warnings}`,
    );
  });
  expect(worker.isPaused()).toBe(false);
  const completed: string[] = [];
  events.on('completed', ({ jobId }) => completed.push(jobId));
  const job = await queue.add('after', {});
  // BullMQ 6 on GLIDE picks jobs up again only after its blocking wait (10 s) following any
  // pause()/resume(), freezeguard or not: allow for that.
  await until(async () => (await job.getState()) === 'completed', 20_000, 'a job after resume');
  await until(() => completed.includes(job.id!), 15_000, 'QueueEvents after resume');
  const outcomes = Object.fromEntries(guard.status().participants.map((p) => [p.name, p.resume]));
  return { outcomes, logger, name };
}

describe.each(kinds)('%s', (_label, kind) => {
  it('resumes through BullMQ’s own client: Redis TIME and PING answer, nothing degraded', async () => {
    const { outcomes, logger, name } = await cycle(kind, systemClock);
    expect(outcomes[`bullmq:${name}`]).toMatchObject({ outcome: 'ok' });
    expect(outcomes['bullmq-connections']).toMatchObject({ outcome: 'ok' });
    expect(logger.warnings).toEqual([]);
  }, 40_000);

  it('reports a resume whose clock never agreed with Redis as an error, and still resumes', async () => {
    const behind: Clock = { now: () => Date.now() - 60_000, monotonic: systemClock.monotonic };
    const { outcomes, name } = await cycle(kind, behind, { clockSyncTimeoutMs: 300 });
    expect(outcomes[`bullmq:${name}`]).toMatchObject({
      outcome: 'error',
      error: { code: 'ERR_CLOCK_SYNC' },
    });
  }, 40_000);
});
