import { randomUUID } from 'node:crypto';
import { participantContract } from '@freezeguard/core/testing';
import { type RedisHandle, startRedis } from '@freezeguard/test-utils';
import { Queue, Worker } from 'bullmq';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { guardWorker } from '../src/index.js';
import { until } from './helpers.js';

// The participant contract of @freezeguard/core/testing, against guardWorker and a real
// Redis: a job in progress is what makes a prepare slow.

let redis: RedisHandle;
const closers: (() => Promise<unknown>)[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  while (closers.length) await closers.pop()!();
  await redis?.stop();
});

describe('guardWorker keeps the participant contract', () => {
  const cases = participantContract(
    async (guard) => {
      const name = `contract-${randomUUID()}`;
      const connection = new IORedis(redis.url, { maxRetriesPerRequest: null });
      let release: (() => void) | null = null;
      const worker = new Worker(
        name,
        () =>
          new Promise<void>((resolve) => {
            release = resolve;
          }),
        { connection, concurrency: 1 },
      );
      const queue = new Queue(name, { connection: connection.duplicate() });
      closers.push(async () => {
        release?.();
        await worker.close(true);
        await queue.close();
        connection.disconnect();
      });
      await worker.waitUntilReady();
      const handle = guardWorker(guard, worker, { pauseTimeoutMs: 500 });
      return {
        handle,
        async busy() {
          await queue.add('hold', {});
          await until(() => release !== null, 10_000, 'a job in progress');
        },
        idle() {
          release?.();
        },
      };
    },
    { slowPrepare: true },
  );
  for (const c of cases) it(c.name, c.run, 30_000);
});
