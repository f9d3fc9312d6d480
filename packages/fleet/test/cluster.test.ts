import { randomUUID } from 'node:crypto';
import { type RedisClusterHandle, startRedisCluster, until } from '@freezeguard/test-utils';
import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openConnection, type RedisLike } from '../src/store.js';
import { type TestMember, testMember } from './helpers.js';

// ioredis' Cluster.duplicate(startupNodes, options) took the fleet's overrides as startup
// nodes and dropped them: with the README's lazyConnect template every member ran on the
// app's options (issue 19). These run the fleet on a real three-master cluster.

let cluster: RedisClusterHandle;
const cleanups: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
afterAll(() => cluster?.stop());

function template(): Cluster {
  // The README's template, in its Cluster form: never connects itself, only duplicated.
  const c = new Cluster([...cluster.nodes], {
    lazyConnect: true,
    redisOptions: { password: cluster.password },
  });
  c.on('error', () => {});
  cleanups.push(() => c.disconnect());
  return c;
}

describe('the fleet on a Redis Cluster', () => {
  it('opens its connections with its own options and keeps the nodes’ auth', async () => {
    const conn = openConnection(template() as unknown as RedisLike, {
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 1,
      lazyConnect: false,
      keyPrefix: '',
      retryStrategy: () => 100,
      reconnectOnError: null,
      connectionName: 'probe',
    }) as unknown as Cluster;
    cleanups.push(() => conn.disconnect());
    expect(conn).toBeInstanceOf(Cluster);
    expect(conn.options.enableOfflineQueue).toBe(false);
    expect(conn.options.lazyConnect).toBe(false);
    expect(conn.options.redisOptions).toMatchObject({
      password: cluster.password,
      maxRetriesPerRequest: 1,
      connectionName: 'probe',
    });
    await until(() => conn.status === 'ready', 10_000, 'the fleet connection ready');
    expect(await conn.get(`fg-${randomUUID()}`)).toBeNull();
  }, 30_000);

  it('two members register, share slots and never act solo', async () => {
    const redis = template() as unknown as RedisLike;
    const group = `g-${randomUUID()}`;
    const ms: TestMember[] = ['a', 'b'].map((id, i) => {
      const m = testMember(redis, { group, id, resourceName: `vm-${i}`, minInRotation: 1 });
      m.start();
      cleanups.push(() => m.fleet.stop());
      return m;
    });
    await until(
      () => ms.every((m) => m.fleet.status().members.length === 2),
      10_000,
      'both members to see each other',
    );
    expect(await ms[0]!.fleet.acquireSlot(['E-1'])).toBe('granted');
    expect(await ms[1]!.fleet.acquireSlot(['E-1'])).toBe('denied');
    for (const m of ms) {
      expect(m.logger.lines.filter((r) => /unavailable|solo/.test(r.msg))).toEqual([]);
    }
  }, 30_000);
});
