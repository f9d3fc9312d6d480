import { randomUUID } from 'node:crypto';
import {
  azureScheduledEvents,
  type MaintenanceDocument,
  type MaintenanceSource,
  type SourceContext,
  systemClock,
  systemTimers,
} from '@freezeguard/core';
import { MemorySource, recordingLogger } from '@freezeguard/core/testing';
import { type Simulator, startSimulator } from '@freezeguard/simulator';
import { type RedisHandle, startRedis, until, wait } from '@freezeguard/test-utils';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAST, type TestMember, testMember } from './helpers.js';

let redis: RedisHandle;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  redis = await startRedis({ own: true });
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

interface Peer {
  readonly member: TestMember;
  readonly inner: MaintenanceSource;
  readonly source: MaintenanceSource;
  readonly documents: MaintenanceDocument[];
  readonly errors: string[];
}

/** N members on one VM, each wrapping its own inner source, started as a guard would. */
function peers<S extends MaintenanceSource>(
  n: number,
  makeInner: (i: number) => S,
  options: {
    url?: string;
    resourceName?: string | undefined;
    group?: string;
    ids?: readonly string[];
  } = {},
): (Peer & { inner: S })[] {
  const group = options.group ?? `g-${randomUUID()}`;
  const vm = 'resourceName' in options ? options.resourceName : `vm-${randomUUID()}`;
  return Array.from({ length: n }, (_, i) => {
    const c = new Redis(options.url ?? redis.url);
    c.on('error', () => {}); // the app's own client; the fleet only duplicates it
    const member = testMember(c, {
      group,
      id: options.ids?.[i] ?? `p${i}`,
      ...(vm === undefined ? {} : { resourceName: vm }),
    });
    const inner = makeInner(i);
    const source = member.fleet.wrapSource(inner);
    const documents: MaintenanceDocument[] = [];
    const errors: string[] = [];
    member.start();
    const ctx: SourceContext = {
      logger: member.logger,
      clock: systemClock,
      timers: member.timers,
      onDocument: (d) => documents.push(d),
      onError: (e) => errors.push(e.message),
    };
    source.start(ctx);
    cleanups.push(async () => {
      member.timers.resume();
      await source.stop();
      await member.fleet.stop();
      c.disconnect();
    });
    return { member, inner, source, documents, errors };
  });
}

const pollers = (all: Peer[]) => all.filter((p) => p.member.fleet.status().poller);
const sawEvent = (p: Peer, id: string) =>
  p.documents.some((d) => d.events.some((e) => e.id === id));

describe('one metadata poller per VM', () => {
  it('a poller restarted with the same memberId is heard at once (its counter starts again)', async () => {
    const group = `g-${randomUUID()}`;
    const vm = `vm-${randomUUID()}`;
    const make = () => new MemorySource({ resourceName: vm });
    const [old] = peers(1, make, { group, resourceName: vm, ids: ['api-0'] });
    await until(() => old!.inner.started, 3000, 'the first process to poll');
    const [follower] = peers(1, make, { group, resourceName: vm, ids: ['worker-0'] });
    await wait(FAST.pollerRenewMs * 3); // subscribed
    for (let i = 1; i <= 5; i++) old!.inner.announce({ EventId: `OLD-${i}` });
    await until(() => sawEvent(follower!, 'OLD-5'), 2000, 'the follower to see OLD-5');

    // The follower cannot run for the lease (its timers are held; pub/sub still arrives),
    // so the restarted process, same memberId, becomes the poller again.
    follower!.member.timers.pause();
    await old!.source.stop();
    await old!.member.fleet.stop();
    const [restarted] = peers(1, make, { group, resourceName: vm, ids: ['api-0'] });
    // Polling means its inner source started: a document announced before is never read.
    await until(
      () => restarted!.member.fleet.status().poller && restarted!.inner.started,
      3000,
      'the restart to poll',
    );
    restarted!.inner.announce({ EventId: 'NEW-1' });
    await until(() => sawEvent(follower!, 'NEW-1'), 2000, 'the follower to see NEW-1');
    follower!.member.timers.resume();
  });

  it('two live processes sharing a memberId are told so (they take the lease from each other)', async () => {
    const group = `g-${randomUUID()}`;
    const vm = `vm-${randomUUID()}`;
    const make = () => new MemorySource({ resourceName: vm });
    const twins = peers(2, make, { group, resourceName: vm, ids: ['dup-0', 'dup-0'] });
    const said = (p: Peer) =>
      p.member.logger.lines.some((l) => l.msg.includes('another live process uses this memberId'));
    await until(() => twins.some(said), 5000, 'the warning');
  });

  it('keys the poller by the VM id: two VMs of one name each poll their own documents', async () => {
    // Azure names are unique per resource group, GCE names per zone: two VMs called the
    // same may share a Redis. Each must read its own metadata service.
    const name = `vm-${randomUUID()}`;
    const group = `g-${randomUUID()}`;
    const run = randomUUID();
    const onVm = (vmId: string) => () =>
      Object.assign(new MemorySource({ resourceName: name }), {
        // Where the VM id is cached: one entry per (fake) metadata endpoint.
        endpoint: `memory://${run}/${vmId}`,
        resolveVmId: async () => vmId,
      });
    const onA = peers(2, onVm('A'), { group, resourceName: name });
    const [onB] = peers(1, onVm('B'), { group, resourceName: name });
    await until(
      () => onA.filter((p) => p.inner.started).length === 1 && onB!.inner.started,
      3000,
      'one poller on each VM',
    );
    expect(pollers([...onA, onB!])).toHaveLength(2);
    await wait(FAST.pollerRenewMs * 3); // followers subscribed
    onA.find((p) => p.inner.started)!.inner.announce({ EventId: 'ON-A' });
    onB!.inner.announce({ EventId: 'ON-B' });
    await until(
      () => onA.every((p) => sawEvent(p, 'ON-A')) && sawEvent(onB!, 'ON-B'),
      2000,
      'each VM to see its own event',
    );
    await wait(300);
    expect(sawEvent(onB!, 'ON-A')).toBe(false);
    expect(onA.some((p) => sawEvent(p, 'ON-B'))).toBe(false);
  });

  it('elects one poller whose documents every member receives; a frozen poller is replaced', async () => {
    const all = peers(4, () => new MemorySource({ resourceName: 'vm-1' }));
    await until(
      () => all.filter((p) => p.inner.started).length === 1 && pollers(all).length === 1,
      3000,
      'one poller',
    );
    const first = all.find((p) => p.inner.started)!;
    await wait(FAST.pollerRenewMs * 3); // followers subscribed
    const doc = first.inner.announce({ EventId: 'E1', EventStatus: 'Scheduled' });
    await until(() => all.every((p) => sawEvent(p, 'E1')), 2000, 'every member to see E1');
    expect(all.every((p) => p.documents.at(-1)?.incarnation === doc.incarnation));

    first.member.timers.pause(); // the poller is frozen: its lease lapses
    const others = all.filter((p) => p !== first);
    await until(
      () => others.filter((p) => p.inner.started).length === 1,
      FAST.pollerLeaseMs + 2000,
      'a new poller among the others',
    );
    const second = others.find((p) => p.inner.started)!;
    // The old poller wakes with a late read: fenced out, nobody else receives it.
    first.inner.announce({ EventId: 'STALE', EventStatus: 'Scheduled' });
    second.inner.announce({ EventId: 'E2', EventStatus: 'Scheduled' });
    await until(() => others.every((p) => sawEvent(p, 'E2')), 2000, 'the others to see E2');
    expect(others.some((p) => sawEvent(p, 'STALE'))).toBe(false);
    first.member.timers.resume();
    await until(
      () => all.filter((p) => p.inner.started).length === 1 && !first.inner.started,
      3000,
      'the woken poller to step down',
    );
    expect(pollers(all)).toEqual([second]);
    // Stepping down, it reads the latest relayed document (one Redis GET after its inner
    // source stopped, which is what the wait above sees first).
    await until(
      () => first.source.health().lastSuccessAt !== null,
      2000,
      'the old poller to read what the new one relays',
    );
  });

  it('eight members against the simulator: no 429, ≤ 1.2 requests/s, every member sees a new event within 2 s', async () => {
    const sim: Simulator = await startSimulator({ resourceName: 'vm-8', rateLimitPerSecond: 5 });
    cleanups.push(() => sim.close());
    const all = peers(8, () => azureScheduledEvents({ endpoint: sim.url, pollIntervalMs: 1000 }), {
      resourceName: 'vm-8',
    });
    await until(() => all.every((p) => p.documents.length > 0), 5000, 'every member to read');
    const from = sim.requests.length;
    const t0 = Date.now();
    const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 60_000 });
    const scheduledAt = Date.now();
    const seenAt: number[] = [];
    await until(
      () => {
        for (let i = 0; i < all.length; i++)
          if (seenAt[i] === undefined && sawEvent(all[i]!, ev.EventId)) seenAt[i] = Date.now();
        return all.every((p) => sawEvent(p, ev.EventId));
      },
      3000,
      'every member to see the event',
    );
    expect(Math.max(...seenAt) - scheduledAt).toBeLessThan(2000);
    await wait(5000 - (Date.now() - t0));
    const window = sim.requests.slice(from);
    const seconds = (Date.now() - t0) / 1000;
    expect(window.filter((r) => r.status === 429)).toHaveLength(0);
    expect(window.length / seconds).toBeLessThanOrEqual(1.2);
    expect(sim.requests.filter((r) => r.status === 429)).toHaveLength(0);
    // Approvals go through the approving member's own source: one POST.
    const follower = all.find((p) => !p.member.fleet.status().poller)!;
    await follower.source.approve(ev.EventId);
    expect(sim.approvals.map((a) => a.eventId)).toEqual([ev.EventId]);
  }, 20_000);

  it('asks the inner source for the VM name once when the guard does not know it', async () => {
    const sim: Simulator = await startSimulator({ resourceName: 'vm-n' });
    cleanups.push(() => sim.close());
    const [p] = peers(1, () => azureScheduledEvents({ endpoint: sim.url }), {
      resourceName: undefined,
    });
    const names = await Promise.all([1, 2, 3].map(() => p!.source.resolveResourceName()));
    expect(names).toEqual(['vm-n', 'vm-n', 'vm-n']);
    await until(() => p!.member.fleet.status().poller, 3000, 'the election under the name');
    expect(await p!.source.resolveResourceName()).toBe('vm-n');
    expect(sim.requests.filter((r) => r.path.includes('compute/name'))).toHaveLength(1);
  });

  it('an inner Azure source polls again after stop() and start()', async () => {
    const sim: Simulator = await startSimulator({ resourceName: 'vm-r' });
    cleanups.push(() => sim.close());
    const source = azureScheduledEvents({ endpoint: sim.url, pollIntervalMs: 200 });
    const docs: MaintenanceDocument[] = [];
    const ctx: SourceContext = {
      logger: recordingLogger(),
      clock: systemClock,
      timers: systemTimers,
      onDocument: (d) => docs.push(d),
      onError: () => {},
    };
    source.start(ctx);
    await until(() => docs.length > 0, 3000, 'a first document');
    await source.stop();
    source.start(ctx);
    const n = docs.length;
    await until(() => docs.length > n, 3000, 'documents after a restart');
    await source.stop();
    expect(source.health().consecutiveFailures).toBe(0);
  });
});

describe('Redis faults', () => {
  it('without Redis every member polls on its own; when Redis returns, one poller again', async () => {
    const own = await startRedis({ own: true });
    let server: RedisHandle | null = own;
    cleanups.push(() => server?.stop());
    const all = peers(3, () => new MemorySource({ resourceName: 'vm-f' }), {
      url: own.url,
      resourceName: 'vm-f',
    });
    await until(() => all.filter((p) => p.inner.started).length === 1, 3000, 'one poller');
    await own.stop();
    server = null;
    await until(() => all.every((p) => p.inner.started), 3000, 'every member polling solo');
    all[1]!.inner.announce({ EventId: 'SOLO', EventStatus: 'Scheduled' });
    expect(sawEvent(all[1]!, 'SOLO')).toBe(true);
    expect(all.every((p) => p.member.fleet.status().connected === false)).toBe(true);
    for (const p of all) {
      const warns = p.member.logger.lines.filter((l) => /Redis unavailable/.test(l.msg));
      // one from the store for the streak, one from the source switching to solo
      expect(warns.length).toBeLessThanOrEqual(2);
    }
    server = await startRedis({ own: true, port: own.port });
    await until(
      () => all.filter((p) => p.inner.started).length === 1,
      5000,
      'one poller after Redis returned',
    );
    await until(() => all.every((p) => p.member.fleet.status().connected), 3000, 'connected');
  });
});
