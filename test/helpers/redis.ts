import { type RedisHandle, startRedis } from '@freezeguard/test-utils';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';

/**
 * A Redis for the file (started before its tests, stopped after) and a client of the
 * test's own; read them inside tests.
 */
export function useRedis(): { readonly url: string; readonly client: Redis } {
  let redis: RedisHandle | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });
  return {
    get url() {
      return redis!.url;
    },
    get client() {
      return client!;
    },
  };
}

/**
 * A BullMQ queue on its own connection; `closers` closes the queue, then the connection
 * (BullMQ does not close a connection it was given, and one left open after Redis stops
 * prints ioredis' "Unhandled error event").
 */
export function openQueue(name: string, url: string, closers: (() => Promise<unknown>)[]): Queue {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  closers.push(async () => connection.disconnect());
  const queue = new Queue(name, { connection });
  closers.push(() => queue.close());
  return queue;
}
