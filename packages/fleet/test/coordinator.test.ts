import { randomUUID } from 'node:crypto';
import { type MaintenanceEvent, systemClock } from '@freezeguard/core';
import { type RedisHandle, startRedis, until, wait } from '@freezeguard/test-utils';
import { Redis } from 'ioredis';
import { Redis as Redis6 } from 'ioredis6';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFleet, redisFleet, redisFleetFromEnv } from '../src/index.js';
import { FAST, type TestMember, testMember } from './helpers.js';

let redis: RedisHandle;
let admin: Redis;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  redis = await startRedis({ own: true });
  admin = new Redis(redis.url);
});
afterAll(async () => {
  admin?.disconnect();
  await redis?.stop();
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function client(): Redis {
  const c = new Redis(redis.url);
  cleanups.push(() => c.disconnect());
  return c;
}

function members(
  n: number,
  options: { group?: string; minInRotation?: number; vm?: (i: number) => string | undefined } = {},
): TestMember[] {
  const group = options.group ?? `g-${randomUUID()}`;
  const c = client();
  return Array.from({ length: n }, (_, i) => {
    const m = testMember(c, {
      group,
      id: `m${i}`,
      ...(() => {
        const vm = options.vm ? options.vm(i) : `vm-${i}`;
        return vm === undefined ? {} : { resourceName: vm };
      })(),
      ...(options.minInRotation === undefined ? {} : { minInRotation: options.minInRotation }),
    });
    m.start();
    cleanups.push(() => m.fleet.stop());
    return m;
  });
}

function event(id: string, resources: string[]): MaintenanceEvent {
  return {
    id,
    kind: 'Freeze',
    resourceType: 'VirtualMachine',
    resources,
    status: 'Scheduled',
    notBefore: Date.now() + 15 * 60_000,
  };
}

const groupOf = (m: TestMember) => m.fleet.status().group;
/** Who the approval registry (every group) counts live now, as `group/id`. */
const registryLive = () =>
  admin.zrangebyscore('freezeguard:approvals:{vms}:members', `(${Date.now()}`, '+inf');
const liveIds = async (m: TestMember) =>
  (await readFleet(admin, { group: groupOf(m) })).members.filter((r) => r.alive).map((r) => r.id);

describe('redisFleet options', () => {
  it('names the option that is wrong', () => {
    const redisLike = { duplicate: () => ({}) } as never;
    expect(() => redisFleet({ redis: redisLike, group: '' })).toThrow(/`group`/);
    expect(() => redisFleet({ redis: {} as never, group: 'a' })).toThrow(/`redis`/);
    expect(() => redisFleet({ redis: redisLike, group: 'a', minInRotation: -1 })).toThrow(
      /`minInRotation`/,
    );
    expect(() =>
      redisFleet({ redis: redisLike, group: 'a', heartbeatMs: 1000, memberTtlMs: 1500 }),
    ).toThrow(/`memberTtlMs`/);
    expect(() =>
      redisFleet({ redis: redisLike, group: 'a', pollerRenewMs: 1000, pollerLeaseMs: 1000 }),
    ).toThrow(/`pollerLeaseMs`/);
  });
});

describe('membership', () => {
  it('registers every member with its view and drops one that stops beating', async () => {
    const [a, b, c] = members(3);
    await until(async () => (await liveIds(a!)).length === 3, 3000, 'three members');
    a!.view.state = 'scheduled';
    await until(
      async () =>
        (await readFleet(admin, { group: groupOf(a!) })).members.find((r) => r.id === 'm0')
          ?.state === 'scheduled',
      3000,
      'the new state at the next beat',
    );
    const changesBefore = b!.changes;
    c!.timers.pause(); // like SIGSTOP: no more heartbeats
    await until(async () => !(await liveIds(a!)).includes('m2'), 3000, 'm2 to expire');
    await until(() => b!.changes > changesBefore, 2000, 'b to be told that a member left');
    await until(() => a!.fleet.status().members.length === 2, 2000, "m0's status to drop m2");
    c!.timers.resume();
    await until(async () => (await liveIds(a!)).includes('m2'), 3000, 'm2 to re-register');
  });

  it('status() reports the group, this member and connectedness', async () => {
    const [a] = members(2, { minInRotation: 1 });
    await until(() => a!.fleet.status().members.length === 2, 3000, 'status');
    const s = a!.fleet.status();
    expect(s).toMatchObject({
      kind: 'redis',
      connected: true,
      memberId: 'm0',
      holdsSlot: false,
      poller: false,
      minInRotation: 1,
      inRotation: 2,
    });
    expect(s.members.map((m) => [m.id, m.resourceName, m.ready])).toEqual([
      ['m0', 'vm-0', true],
      ['m1', 'vm-1', true],
    ]);
  });
});

describe('drain slots', () => {
  it('grants a slot only while minInRotation others keep serving; a release lets the next in', async () => {
    const [a, b, c] = members(3, { minInRotation: 1 });
    await until(async () => (await liveIds(a!)).length === 3, 3000, 'members');
    expect(await a!.fleet.acquireSlot(['E1'])).toBe('granted');
    expect(await b!.fleet.acquireSlot(['E1'])).toBe('granted');
    expect(await c!.fleet.acquireSlot(['E1'])).toBe('denied');
    expect(await c!.fleet.acquireSlot(['E1'])).toBe('denied');
    expect(a!.fleet.status().holdsSlot).toBe(true);
    const changes = c!.changes;
    await a!.fleet.releaseSlot();
    await until(() => c!.changes > changes, 2000, 'c to hear that a slot was released');
    expect(await c!.fleet.acquireSlot(['E1'])).toBe('granted');
    // Idempotent release, also without a slot.
    await a!.fleet.releaseSlot();
    await a!.fleet.releaseSlot();
    const snap = await readFleet(admin, { group: groupOf(a!) });
    expect(snap.members.filter((m) => m.holdsSlot).map((m) => m.id)).toEqual(['m1', 'm2']);
  });

  it('is atomic: 10 concurrent requests with minInRotation 5 grant exactly 5', async () => {
    const all = members(10, { minInRotation: 5 });
    await until(async () => (await liveIds(all[0]!)).length === 10, 3000, 'members');
    const answers = await Promise.all(all.map((m) => m.fleet.acquireSlot(['E'])));
    expect(answers.filter((a) => a === 'granted')).toHaveLength(5);
    expect(answers.filter((a) => a === 'denied')).toHaveLength(5);
  });

  it('does not count a member that does not serve, nor a frozen one past its heartbeat', async () => {
    const [a, b, c] = members(3, { minInRotation: 1 });
    await until(async () => (await liveIds(a!)).length === 3, 3000, 'members');
    b!.view.ready = false; // e.g. out of rotation after a solo drain
    await wait(FAST.heartbeatMs * 3);
    expect(await a!.fleet.acquireSlot(['E'])).toBe('granted');
    expect(await c!.fleet.acquireSlot(['E'])).toBe('denied');
    b!.view.ready = true;
    await until(async () => (await c!.fleet.acquireSlot(['E'])) === 'granted', 2000, 'grant');
    await c!.fleet.releaseSlot();
    b!.timers.pause(); // frozen while serving: it leaves the count once its heartbeat expires
    await until(async () => !(await liveIds(a!)).includes('m1'), 3000, 'b to expire');
    expect(await c!.fleet.acquireSlot(['E'])).toBe('denied');
    b!.timers.resume();
  });

  it('renews a held slot past its TTL, and gives it up when the lease vanishes', async () => {
    const [a] = members(2, { minInRotation: 1 });
    await until(async () => (await liveIds(a!)).length === 2, 3000, 'members');
    expect(await a!.fleet.acquireSlot(['E'])).toBe('granted');
    await wait(FAST.slotTtlMs * 1.5);
    const snap = await readFleet(admin, { group: groupOf(a!) });
    expect(snap.members.find((m) => m.id === 'm0')?.holdsSlot).toBe(true);
    expect(a!.fleet.status().holdsSlot).toBe(true);
    const changes = a!.changes;
    await admin.zrem(`freezeguard:group:{${groupOf(a!)}}:slots`, 'm0');
    await until(() => !a!.fleet.status().holdsSlot, 2000, 'the slot to be considered lost');
    expect(a!.changes).toBeGreaterThan(changes);
    expect(a!.logger.lines.some((l) => /drain slot lost/.test(l.msg))).toBe(true);
  });
});

describe('prepared (approve: fleet)', () => {
  it('approves once, by the last listed VM to prepare', async () => {
    const [a, b, c] = members(3);
    await until(async () => (await liveIds(a!)).length === 3, 3000, 'members');
    const ev = event('E-all', ['vm-0', 'vm-1', 'vm-2']);
    expect(await a!.fleet.prepared(ev)).toBe(false);
    expect(await b!.fleet.prepared(ev)).toBe(false);
    expect(await c!.fleet.prepared(ev)).toBe(true);
    expect(await c!.fleet.prepared(ev)).toBe(false);
    expect(await a!.fleet.prepared(ev)).toBe(false);
  });

  it('exactly one of many concurrent callers approves', async () => {
    const all = members(8);
    await until(async () => (await liveIds(all[0]!)).length === 8, 3000, 'members');
    for (let round = 0; round < 5; round++) {
      const ev = event(
        `E-${round}`,
        all.map((_, i) => `vm-${i}`),
      );
      const answers = await Promise.all(all.map((m) => m.fleet.prepared(ev)));
      expect(answers.filter(Boolean)).toHaveLength(1);
    }
  });

  it('never approves an event that lists a VM without a live member, nor one not listing this VM', async () => {
    const [a, b] = members(2);
    await until(async () => (await liveIds(a!)).length === 2, 3000, 'members');
    const ev = event('E-out', ['vm-0', 'vm-1', 'vm-elsewhere']);
    expect(await a!.fleet.prepared(ev)).toBe(false);
    expect(await b!.fleet.prepared(ev)).toBe(false);
    expect(await a!.fleet.prepared(event('E-other', ['vm-9']))).toBe(false);
  });

  it('waits for every member on a listed VM (two processes on one VM)', async () => {
    const [a, a2, b] = members(3, { vm: (i) => (i < 2 ? 'vm-a' : 'vm-b') });
    await until(async () => (await liveIds(a!)).length === 3, 3000, 'members');
    const ev = event('E-ab', ['vm-a', 'vm-b']);
    expect(await a!.fleet.prepared(ev)).toBe(false);
    expect(await b!.fleet.prepared(ev)).toBe(false);
    expect(await a2!.fleet.prepared(ev)).toBe(true);
  });

  it('does not approve while a live member does not know its VM name yet', async () => {
    const [a, b, nameless] = members(3, { vm: (i) => (i === 2 ? undefined : `vm-${i}`) });
    await until(async () => (await liveIds(a!)).length === 3, 3000, 'members');
    const ev = event('E-nameless', ['vm-0', 'vm-1']);
    expect(await a!.fleet.prepared(ev)).toBe(false);
    // It may well be on vm-0 or vm-1, serving: no approval yet.
    expect(await b!.fleet.prepared(ev)).toBe(false);
    // It learns its name (another VM) and says so at its next heartbeat.
    nameless!.view.resourceName = 'vm-9';
    await wait(FAST.heartbeatMs * 4);
    expect(await b!.fleet.prepared(ev)).toBe(true);
  });

  it('does not wait for a member in observe mode on a listed VM (it prepares nothing)', async () => {
    const [a, observer, b] = members(3, { vm: (i) => (i < 2 ? 'vm-a' : 'vm-b') });
    await until(async () => (await liveIds(a!)).length === 3, 3000, 'members');
    (observer!.view as { observing?: boolean }).observing = true;
    await wait(FAST.heartbeatMs * 4); // its next heartbeat says so
    const ev = event('E-observed', ['vm-a', 'vm-b']);
    expect(await a!.fleet.prepared(ev)).toBe(false);
    expect(await b!.fleet.prepared(ev)).toBe(true);
  });

  it('does not approve when a listed member has left (crashed or frozen past its TTL)', async () => {
    const [a, b] = members(2);
    await until(async () => (await liveIds(a!)).length === 2, 3000, 'members');
    const ev = event('E-gone', ['vm-0', 'vm-1']);
    expect(await b!.fleet.prepared(ev)).toBe(false);
    b!.timers.pause();
    await until(async () => !(await liveIds(a!)).includes('m1'), 3000, 'b to expire');
    // Its prepared report counted as contact: the registry drops it a little later.
    await until(
      async () => !(await registryLive()).includes(`${groupOf(b!)}/m1`),
      3000,
      'b to expire from the approval registry',
    );
    expect(await a!.fleet.prepared(ev)).toBe(false);
    b!.timers.resume();
  });
});

// Issue 19: an API in group `api` and a worker in group `jobs` on one VM. Approval was
// decided per group, so `api` approved while the `jobs` member on the same VM was still
// running, and each group sent its own StartRequests for the event.
describe('prepared across groups (the VM is the unit)', () => {
  it('waits for the member of another group on the same VM; exactly one approval', async () => {
    const [api] = members(1, { group: `api-${randomUUID()}`, vm: () => 'vm-shared' });
    const [jobs] = members(1, { group: `jobs-${randomUUID()}`, vm: () => 'vm-shared' });
    await until(async () => (await registryLive()).length >= 2, 3000, 'registry');
    const ev = event('E-groups', ['vm-shared']);
    expect(await api!.fleet.prepared(ev)).toBe(false);
    expect(await jobs!.fleet.prepared(ev)).toBe(true);
    expect(await api!.fleet.prepared(ev)).toBe(false);
    const reason = api!.logger.lines.find((r) => r.msg === 'freezeguard: prepared; not approving');
    expect(String((reason?.obj as { reason?: string })?.reason)).toContain(`${groupOf(jobs!)}/m0`);
  });

  it('a multi-VM event waits for every member of every group on each listed VM', async () => {
    const api = members(2, { group: `api-${randomUUID()}`, vm: (i) => `vm-m${i}` });
    const [jobs] = members(1, { group: `jobs-${randomUUID()}`, vm: () => 'vm-m0' });
    await until(async () => (await registryLive()).length >= 3, 3000, 'registry');
    const ev = event('E-groups-2', ['vm-m0', 'vm-m1']);
    // Both api members prepared: under per-group approval the second one approved here.
    expect(await api[0]!.fleet.prepared(ev)).toBe(false);
    expect(await api[1]!.fleet.prepared(ev)).toBe(false);
    expect(await jobs!.fleet.prepared(ev)).toBe(true);
  });

  it('tells a waiting member when a member of another group leaves, and then names it', async () => {
    const [api] = members(1, { group: `api-${randomUUID()}`, vm: () => 'vm-left' });
    const [jobs] = members(1, { group: `jobs-${randomUUID()}`, vm: () => 'vm-left' });
    await until(async () => (await registryLive()).length >= 2, 3000, 'registry');
    const ev = event('E-left', ['vm-left']);
    expect(await api!.fleet.prepared(ev)).toBe(false);
    const before = api!.changes;
    await jobs!.fleet.stop();
    await until(async () => api!.changes > before, 3000, 'the api member to be told');
    expect(await api!.fleet.prepared(ev)).toBe(true);
  });
});

describe('with ioredis 6', () => {
  it('grants, denies, approves', async () => {
    const c = new Redis6(redis.url);
    cleanups.push(() => c.disconnect());
    const group = `g6-${randomUUID()}`;
    const all = [0, 1].map((i) => {
      const m = testMember(c, { group, id: `m${i}`, resourceName: `vm-${i}` });
      m.start();
      cleanups.push(() => m.fleet.stop());
      return m;
    });
    await until(async () => (await liveIds(all[0]!)).length === 2, 3000, 'members');
    expect(await all[0]!.fleet.acquireSlot(['E'])).toBe('granted');
    expect(await all[1]!.fleet.acquireSlot(['E'])).toBe('denied');
    const ev = event('E6', ['vm-0', 'vm-1']);
    expect(await all[0]!.fleet.prepared(ev)).toBe(false);
    expect(await all[1]!.fleet.prepared(ev)).toBe(true);
    await all[0]!.fleet.stop();
    expect(await liveIds(all[1]!)).toEqual(['m1']);
  });
});

describe('Redis faults', () => {
  it('every call resolves quickly while Redis is down; the member re-registers when it returns', async () => {
    const own = await startRedis({ own: true });
    let server: RedisHandle | null = own;
    cleanups.push(() => server?.stop());
    const c = new Redis(own.url);
    c.on('error', () => {});
    cleanups.push(() => c.disconnect());
    const group = `g-${randomUUID()}`;
    const [a, b] = [0, 1].map((i) => {
      const m = testMember(c, { group, id: `m${i}`, resourceName: `vm-${i}` });
      m.start();
      cleanups.push(() => m.fleet.stop());
      return m;
    }) as [TestMember, TestMember];
    await until(() => a.fleet.status().members.length === 2, 3000, 'members');
    expect(await a.fleet.acquireSlot(['E'])).toBe('granted');
    const changes = a.changes;

    await own.stop();
    server = null;
    const t0 = Date.now();
    const answers = await Promise.all([
      b.fleet.acquireSlot(['E']),
      b.fleet.prepared(event('E', ['vm-0', 'vm-1'])),
      b.fleet.releaseSlot(),
    ]);
    expect(Date.now() - t0).toBeLessThan(FAST.opTimeoutMs + 1000);
    expect(answers).toEqual(['unavailable', false, undefined]);
    await until(() => !a.fleet.status().holdsSlot, 2000, 'a to drop the slot it cannot renew');
    expect(a.changes).toBeGreaterThan(changes);
    expect(a.fleet.status().connected).toBe(false);
    await wait(FAST.heartbeatMs * 5); // several failed beats: still one warning
    expect(a.logger.lines.filter((l) => /Redis unavailable/.test(l.msg))).toHaveLength(1);
    await a.fleet.stop(); // resolves without Redis too
    a.start();

    server = await startRedis({ own: true, port: own.port });
    await until(() => a.fleet.status().connected && b.fleet.status().connected, 5000, 'reconnect');
    await until(
      async () => (await readFleet(c, { group })).members.filter((m) => m.alive).length === 2,
      3000,
      'both members re-registered',
    );
    expect(b.logger.lines.some((l) => /reachable again/.test(l.msg))).toBe(true);
    expect(await b.fleet.acquireSlot(['E'])).toBe('granted');
  }, 20_000);

  it('a slow Redis answers unavailable, and a grant that lands late is taken back', async () => {
    const [a] = members(2, { minInRotation: 1 });
    await until(async () => (await liveIds(a!)).length === 2, 3000, 'members');
    const blocker = client();
    // Keep Redis busy for 1.2 s with a script, as a stalled server would be.
    const busy = blocker.eval(
      "local s = redis.call('TIME') local t0 = s[1] * 1000000 + s[2] while true do local t = redis.call('TIME') if t[1] * 1000000 + t[2] - t0 > 1200000 then break end end return 1",
      0,
    );
    await wait(50);
    expect(await a!.fleet.acquireSlot(['E'])).toBe('unavailable');
    await busy;
    await wait(FAST.heartbeatMs * 3);
    const snap = await readFleet(admin, { group: groupOf(a!) });
    expect(snap.members.filter((m) => m.holdsSlot)).toEqual([]);
    expect(a!.fleet.status().holdsSlot).toBe(false);
  }, 20_000);
});

describe('redisFleetFromEnv', () => {
  it('is off without REDIS_URL and FREEZEGUARD_FLEET_GROUP, on with both', async () => {
    expect(await redisFleetFromEnv({})).toBeUndefined();
    expect(await redisFleetFromEnv({ REDIS_URL: redis.url })).toBeUndefined();
    await expect(
      redisFleetFromEnv({
        REDIS_URL: redis.url,
        FREEZEGUARD_FLEET_GROUP: 'g',
        FREEZEGUARD_MIN_IN_ROTATION: 'two',
      }),
    ).rejects.toThrow(/FREEZEGUARD_MIN_IN_ROTATION/);
    const group = `env-${randomUUID()}`;
    const fleet = await redisFleetFromEnv(
      { REDIS_URL: redis.url, FREEZEGUARD_FLEET_GROUP: group, FREEZEGUARD_MIN_IN_ROTATION: '2' },
      { memberId: 'from-env', ...FAST },
    );
    expect(fleet).toBeDefined();
    const m = testMember(client(), { group, id: 'other' });
    m.start();
    cleanups.push(() => m.fleet.stop());
    fleet!.start({
      logger: m.logger,
      clock: systemClock,
      timers: m.timers,
      member: () => ({ state: 'idle', ready: true, resourceName: 'vm-env' }),
      onChange: () => {},
    });
    cleanups.push(() => fleet!.stop());
    await until(async () => (await liveIds(m)).length === 2, 3000, 'both members');
    expect(fleet!.status()).toMatchObject({ group, minInRotation: 2, memberId: 'from-env' });
    expect(await fleet!.acquireSlot(['E'])).toBe('denied'); // one other serving < 2
  });
});
