import { randomUUID } from 'node:crypto';
import { type RedisHandle, startRedis, wait } from '@freezeguard/test-utils';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmKeys } from '../src/options.js';
import { CLAIM, PUBLISH_DOC, type Script } from '../src/scripts.js';
import { fresh } from '../src/source.js';

// Issue 19: the documents a VM's poller shares are fenced by the lease's term (an epoch
// taken with the lease), not by a per-process counter: a poller restarted with a fixed
// memberId counts from 1 again, and a frozen one that wakes up counts on.

let redis: RedisHandle;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis({ own: true });
  client = new Redis(redis.url);
});
afterAll(async () => {
  client?.disconnect();
  await redis?.stop();
});

const run = <T>(script: Script, keys: string[], args: (string | number)[]) =>
  client.eval(script.body, keys.length, ...keys, ...args) as Promise<T>;

function vm() {
  const k = vmKeys('fencing:', `id:${randomUUID()}`);
  return {
    k,
    claim: (holder: string, leaseMs = 200) =>
      run<[number, string, number]>(
        CLAIM,
        [k.poller, k.epoch],
        [holder, leaseMs, holder.split(' ')[0]!],
      ),
    publish: (holder: string, epoch: number) =>
      run<number>(
        PUBLISH_DOC,
        [k.poller, k.latest, k.epoch],
        [holder, '{}', 10_000, `${k.channel}`, epoch],
      ),
  };
}

describe('poller terms (fencing tokens)', () => {
  it('a new holder opens a newer term; the lapsed one can publish in neither, even after taking the lease back', async () => {
    const v = vm();
    const [mineA, , e1] = await v.claim('a inc1');
    expect(mineA).toBe(1);
    expect((await v.claim('b inc1'))[0]).toBe(0); // held
    expect(await v.publish('a inc1', e1)).toBe(1);
    await wait(300); // a is frozen past its lease
    const [mineB, , e2] = await v.claim('b inc1');
    expect(mineB).toBe(1);
    expect(e2).toBeGreaterThan(e1);
    expect(await v.publish('a inc1', e1)).toBe(0);
    await wait(300); // now b lapses, and a wakes up and takes the lease again
    const [, , e3] = await v.claim('a inc1');
    expect(e3).toBeGreaterThan(e2);
    // What a prepared before its freeze, still stamped with its first term, is fenced out.
    expect(await v.publish('a inc1', e1)).toBe(0);
    expect(await v.publish('a inc1', e3)).toBe(1);
  });

  it('a restart with the same memberId takes a new term at once; the old start is fenced', async () => {
    const v = vm();
    const [, , e1] = await v.claim('api-0 start1', 60_000);
    const [mine, holder, e2] = await v.claim('api-0 start2', 60_000);
    expect(mine).toBe(1);
    expect(holder).toBe('api-0 start2');
    expect(e2).toBeGreaterThan(e1);
    expect(await v.publish('api-0 start1', e1)).toBe(0);
    // Another member is still refused while the lease lives.
    expect((await v.claim('worker-0 start1', 60_000))[0]).toBe(0);
  });

  it('terms keep rising when Redis lost its data (they are at least its time in µs)', async () => {
    const v = vm();
    const [, , e1] = await v.claim('a x', 50);
    await client.del(v.k.epoch, v.k.poller);
    const [, , e2] = await v.claim('b x', 50);
    expect(e2).toBeGreaterThan(e1);
  });

  it('a follower takes a document only from the newest term, once', () => {
    expect(fresh({ epoch: 0, n: 0 }, { epoch: 5, n: 1 })).toBe(true);
    expect(fresh({ epoch: 5, n: 3 }, { epoch: 5, n: 4 })).toBe(true);
    expect(fresh({ epoch: 5, n: 3 }, { epoch: 5, n: 3 })).toBe(false);
    // A restarted poller counts from 1 again, in a newer term: taken.
    expect(fresh({ epoch: 5, n: 900 }, { epoch: 6, n: 1 })).toBe(true);
    // A woken stale poller counts on, in an older term: dropped.
    expect(fresh({ epoch: 6, n: 1 }, { epoch: 5, n: 901 })).toBe(false);
  });
});
