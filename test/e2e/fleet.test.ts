import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { readFleet } from '@freezeguard/fleet';
import { type Simulator, startSimulator } from '@freezeguard/simulator';
import { httpStatus } from '@freezeguard/simulator/process';
import { type RedisHandle, startRedis } from '@freezeguard/test-utils';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type App,
  type Haproxy,
  logsOf,
  spawnTracked,
  startApp,
  startHaproxy,
  stopAll,
} from '../helpers/processes.js';
import { printTable } from '../helpers/report.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await stopAll();
  while (closers.length) await closers.pop()!();
});

const rows: Record<string, Record<string, string | number>> = {};
afterAll(() => {
  if (Object.keys(rows).length) printTable('Fleet (@freezeguard/fleet, real Redis)', rows);
});

const wait = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await wait(50);
  }
}

/** The JSON lines a fixture process printed. */
function lines(proc: ChildProcess): Record<string, unknown>[] {
  return logsOf(proc).flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [{ raw: l }];
    }
  });
}

const sawAt = (proc: ChildProcess, eventId: string) =>
  lines(proc).find((l) => l.event === eventId)?.at as number | undefined;
const isPoller = (proc: ChildProcess) =>
  lines(proc).findLast((l) => 'poller' in l)?.poller === true;

const memberScript = fileURLToPath(new URL('../fixtures/fleet-member.mjs', import.meta.url));

/** Eight processes of one VM polling the emulator (IMDS rate limit 5/s), with or without a fleet. */
async function eightOnOneVm(fleet: boolean) {
  const sim: Simulator = await startSimulator({ resourceName: 'vm-shared', rateLimitPerSecond: 5 });
  closers.push(() => sim.close());
  let redis: RedisHandle | null = null;
  if (fleet) {
    redis = await startRedis({ own: true });
    const r = redis;
    closers.push(() => r.stop());
  }
  const group = `e2e-${randomUUID().slice(0, 8)}`;
  const procs = Array.from({ length: 8 }, (_, i) =>
    spawnTracked(
      process.execPath,
      [memberScript],
      {
        FLEET: fleet ? '1' : '0',
        REDIS_URL: redis?.url ?? '',
        FREEZEGUARD_FLEET_GROUP: group,
        FREEZEGUARD_RESOURCE_NAME: 'vm-shared',
        FREEZEGUARD_IMDS_ENDPOINT: sim.url,
        MEMBER_ID: `p${i}`,
      },
      `p${i}`,
    ),
  );
  if (fleet) {
    await until(
      () => procs.every((p) => lines(p).some((l) => 'document' in l)),
      15_000,
      'every process to read a first document',
    );
  } else {
    // Without a fleet some never read one (429 and backoff): that is the point.
    await until(() => procs.some((p) => lines(p).some((l) => 'document' in l)), 15_000, 'a read');
    await wait(3000);
  }
  return { sim, procs };
}

describe('eight processes sharing one resource name', () => {
  it('fleet: one IMDS poller, 0 × 429, every process sees a new event within 2 s, a frozen poller is replaced; without: 429s', async () => {
    // Baseline in the same run: every process polls IMDS itself.
    const plain = await eightOnOneVm(false);
    const plainFrom = plain.sim.requests.length;
    const plainT0 = Date.now();
    const plainEvent = plain.sim.schedule({ type: 'Freeze', notBeforeInMs: 120_000 });
    await wait(10_000);
    const plainWindow = plain.sim.requests.slice(plainFrom);
    const plainSeen = plain.procs.map((p) => sawAt(p, plainEvent.EventId));
    rows['8 processes, no fleet'] = {
      'requests/s': (plainWindow.length / ((Date.now() - plainT0) / 1000)).toFixed(2),
      '429 responses': plainWindow.filter((r) => r.status === 429).length,
      'saw the event ≤ 2 s': plainSeen.filter((at) => at !== undefined && at - plainT0 <= 2000)
        .length,
      'never saw it in 10 s': plainSeen.filter((at) => at === undefined).length,
    };
    await stopAll();
    while (closers.length) await closers.pop()!();

    const { sim, procs } = await eightOnOneVm(true);
    const from = sim.requests.length;
    const t0 = Date.now();
    const first = sim.schedule({ type: 'Freeze', notBeforeInMs: 120_000 });
    await until(
      () => procs.every((p) => sawAt(p, first.EventId) !== undefined),
      5000,
      'every process to see the first event',
    );
    const latencies = procs.map((p) => sawAt(p, first.EventId)! - t0);

    // Freeze the poller as a SIGSTOP would: another process must take over.
    await until(() => procs.filter(isPoller).length === 1, 5000, 'one poller');
    const poller = procs.find(isPoller)!;
    process.kill(-poller.pid!, 'SIGSTOP');
    const frozenAt = Date.now();
    const second = sim.schedule({ type: 'Freeze', notBeforeInMs: 120_000 });
    const others = procs.filter((p) => p !== poller);
    await until(
      () => others.every((p) => sawAt(p, second.EventId) !== undefined),
      10_000,
      'the others to see the second event',
    );
    const takeover = Math.max(...others.map((p) => sawAt(p, second.EventId)! - frozenAt));
    process.kill(-poller.pid!, 'SIGCONT');
    await wait(Math.max(3000, 15_000 - (Date.now() - t0)));
    const window = sim.requests.slice(from);
    const seconds = (Date.now() - t0) / 1000;
    await until(() => procs.filter(isPoller).length === 1, 5000, 'one poller after the wake-up');

    rows['8 processes, fleet'] = {
      'requests/s': (window.length / seconds).toFixed(2),
      '429 responses': window.filter((r) => r.status === 429).length,
      'saw the event ≤ 2 s': latencies.filter((ms) => ms <= 2000).length,
      'never saw it in 10 s': 0,
      'max latency ms': Math.max(...latencies),
      'poller frozen → others see a new event, ms': takeover,
    };
    expect(sim.requests.filter((r) => r.status === 429)).toHaveLength(0);
    expect(window.length / seconds).toBeLessThanOrEqual(1.2);
    expect(Math.max(...latencies)).toBeLessThan(2000);
    expect(takeover).toBeLessThan(6000);
    expect(procs.flatMap((p) => lines(p).filter((l) => 'unhandled' in l))).toEqual([]);
    // The harness can see the failure it guards against.
    expect(rows['8 processes, no fleet']!['429 responses']).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------
// The proofs below need the guard's fleet integration (issue 11: `createGuard({ fleet,
// approve: 'fleet' })`): the examples turn the fleet on from REDIS_URL +
// FREEZEGUARD_FLEET_GROUP (+ FREEZEGUARD_MIN_IN_ROTATION).

const FREEZE_MS = 4000;
const VMS = ['vm-a', 'vm-b', 'vm-c'] as const;

interface Fleet {
  readonly sim: Simulator;
  readonly apps: App[];
  readonly lb: Haproxy;
}

/** Three express-api instances behind HAProxy, every one reading the same emulator. */
async function threeBehindHaproxy(
  fleet: {
    readonly redisUrl: string;
    readonly minInRotation: number;
  } | null,
): Promise<Fleet> {
  // One emulator serves the three VMs' documents (each app is told its own name); no
  // rate limit, three pollers are not what is measured here.
  const sim = await startSimulator({ resourceName: 'vm-a', rateLimitPerSecond: 0 });
  closers.push(() => sim.close());
  const group = `e2e-${randomUUID().slice(0, 8)}`;
  const apps: App[] = [];
  for (const vm of VMS) {
    apps.push(
      await startApp(
        'express-api',
        {
          FREEZEGUARD_IMDS_ENDPOINT: sim.url,
          FREEZEGUARD_RESOURCE_NAME: vm,
          // HAProxy needs 2 failed checks 500 ms apart: drain for longer than that.
          FREEZEGUARD_DRAIN_DELAY_MS: '2500',
          ...(fleet
            ? {
                REDIS_URL: fleet.redisUrl,
                FREEZEGUARD_FLEET_GROUP: group,
                FREEZEGUARD_MIN_IN_ROTATION: String(fleet.minInRotation),
              }
            : {}),
        },
        vm,
      ),
    );
  }
  // Like Azure's probe: an unanswered check (a frozen instance) does not by itself take
  // a server out (timeout check above the freeze), a 503 (a drained one) does, fast.
  const lb = await startHaproxy(apps, { checkTimeout: '6s', serverTimeout: '10s', stats: true });
  closers.push(() => lb.stop());
  return { sim, apps, lb };
}

/**
 * Freezes the apps of `eventId` when it starts (approved, or NotBefore reached), like
 * Azure: SIGSTOP for FREEZE_MS, SIGCONT, then the event leaves the document.
 */
async function freezeWhenStarted(
  sim: Simulator,
  eventId: string,
  apps: readonly App[],
): Promise<{ approved: boolean; endedAt: number }> {
  const event = sim.events().find((e) => e.EventId === eventId)!;
  const approved = await new Promise<boolean>((resolve) => {
    const onStarted = (e: { EventId: string }) => {
      if (e.EventId !== eventId) return;
      clearTimeout(timer);
      sim.off('started', onStarted as never);
      resolve(sim.approvals.some((a) => a.eventId === eventId));
    };
    const timer = setTimeout(() => sim.start(eventId), Math.max(0, event.notBefore - Date.now()));
    sim.on('started', onStarted);
  });
  await wait(250);
  for (const app of apps) process.kill(-app.proc.pid!, 'SIGSTOP');
  await wait(FREEZE_MS);
  for (const app of apps) process.kill(-app.proc.pid!, 'SIGCONT');
  sim.complete(eventId);
  return { approved, endedAt: Date.now() };
}

describe('three instances behind HAProxy, one Freeze listing all three', () => {
  async function run(fleet: boolean) {
    let redisUrl = '';
    if (fleet) {
      const redis = await startRedis({ own: true });
      closers.push(() => redis.stop());
      redisUrl = redis.url;
    }
    const { sim, apps, lb } = await threeBehindHaproxy(
      fleet ? { redisUrl, minInRotation: 1 } : null,
    );
    const load = autocannon({
      url: `${lb.url}/api/items`,
      connections: 20,
      overallRate: 100,
      duration: 22,
      // Above the freeze: a request stalled by the freeze is slow, not lost.
      timeout: 10,
    });
    await wait(1000);
    const ev = sim.schedule({
      type: 'Freeze',
      notBeforeInMs: 8000,
      durationInSeconds: FREEZE_MS / 1000,
      resources: [...VMS],
      autoStart: false,
    });
    await freezeWhenStarted(sim, ev.EventId, apps);
    const result = await load;
    return {
      requests: result.requests.total,
      '2xx': result['2xx'],
      'non-2xx (503)': result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      'p99 ms': result.latency.p99,
      'max ms': result.latency.max,
    };
  }

  it('plain guards drain all three (HAProxy 503s); fleet guards with minInRotation 1: 0 failed, 0 timed out', async () => {
    const plain = await run(false);
    await stopAll();
    while (closers.length) await closers.pop()!();
    const fleet = await run(true);
    rows['3 behind HAProxy, Freeze lists all 3: plain guards'] = plain;
    rows['3 behind HAProxy, Freeze lists all 3: fleet, minInRotation 1'] = fleet;
    expect(plain['non-2xx (503)']).toBeGreaterThan(0);
    expect(fleet.requests).toBeGreaterThan(1000);
    expect({
      non2xx: fleet['non-2xx (503)'],
      errors: fleet.errors,
      timeouts: fleet.timeouts,
    }).toEqual({ non2xx: 0, errors: 0, timeouts: 0 });
  });
});

describe('two events for two of three instances at the same time', () => {
  async function run(fleet: boolean) {
    let redisUrl = '';
    if (fleet) {
      const redis = await startRedis({ own: true });
      closers.push(() => redis.stop());
      redisUrl = redis.url;
    }
    const { sim, apps, lb } = await threeBehindHaproxy(
      fleet ? { redisUrl, minInRotation: 2 } : null,
    );
    let minUp: number = VMS.length;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const servers = await lb.servers().catch(() => null);
        if (servers)
          minUp = Math.min(minUp, servers.filter((s) => s.status.startsWith('UP')).length);
        await wait(100);
      }
    })();
    const notice = 60_000;
    const t0 = Date.now();
    const events = [0, 1].map((i) =>
      sim.schedule({
        type: 'Freeze',
        notBeforeInMs: notice,
        durationInSeconds: FREEZE_MS / 1000,
        resources: [VMS[i]!],
        autoStart: false,
      }),
    );
    const outcomes = await Promise.all(
      events.map((ev, i) => freezeWhenStarted(sim, ev.EventId, [apps[i]!])),
    );
    // Let the last one come back into rotation before judging.
    await wait(3000);
    sampling = false;
    await sampler;
    return {
      minUp,
      approved: outcomes.filter((o) => o.approved).length,
      doneAfterMs: Math.max(...outcomes.map((o) => o.endedAt)) - t0,
      notice,
    };
  }

  it('approve fleet, minInRotation 2: never fewer than two UP, both freezes well before NotBefore; plain solo guards drop to one', async () => {
    const plain = await run(false);
    await stopAll();
    while (closers.length) await closers.pop()!();
    const fleet = await run(true);
    for (const [name, o] of [
      ['plain guards (approve solo)', plain],
      ['fleet, approve fleet, minInRotation 2', fleet],
    ] as const) {
      rows[`2 events for 2 of 3: ${name}`] = {
        'fewest servers UP': o.minUp,
        'events approved': o.approved,
        'both done after s': (o.doneAfterMs / 1000).toFixed(1),
        'NotBefore after s': o.notice / 1000,
      };
    }
    expect(plain.minUp).toBeLessThan(2);
    expect(fleet.minUp).toBeGreaterThanOrEqual(2);
    expect(fleet.approved).toBe(2);
    expect(fleet.doneAfterMs).toBeLessThan(fleet.notice / 2);
  });
});

describe('Redis killed mid-cycle', () => {
  it('no unhandled error, every member back in rotation after its freeze, no slot left held', async () => {
    let redis: RedisHandle | null = await startRedis({ own: true });
    const port = redis.port;
    closers.push(() => redis?.stop() ?? Promise.resolve());
    const url = redis.url;
    const { sim, apps } = await threeBehindHaproxy({ redisUrl: url, minInRotation: 1 });
    const admin = new Redis(url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => {});
    closers.push(async () => admin.disconnect());
    const group = async () => {
      const groups = await admin.keys('freezeguard:group:*:members');
      const name = /\{(.+)\}/.exec(groups[0] ?? '')?.[1];
      return name ? readFleet(admin, { group: name }) : null;
    };
    const ev = sim.schedule({
      type: 'Freeze',
      notBeforeInMs: 10_000,
      durationInSeconds: FREEZE_MS / 1000,
      resources: [...VMS],
      autoStart: false,
    });
    // Mid-cycle: once a member holds a drain slot, Redis goes away.
    const deadline = Date.now() + 8000;
    for (;;) {
      const snap = await group().catch(() => null);
      if (snap?.members.some((m) => m.holdsSlot)) break;
      if (Date.now() > deadline) throw new Error('no member took a drain slot');
      await wait(100);
    }
    await redis.stop();
    redis = null;
    const { endedAt } = await freezeWhenStarted(sim, ev.EventId, apps);
    redis = await startRedis({ own: true, port });
    const backAt: number[] = [];
    for (const app of apps) {
      const until200 = Date.now() + 20_000;
      while ((await httpStatus(`${app.url}/health/ready`)) !== 200) {
        if (Date.now() > until200) throw new Error(`${app.url} not back in rotation`);
        await wait(100);
      }
      backAt.push(Date.now() - endedAt);
    }
    // Members re-register; the slots from before the restart are gone and none is re-taken.
    let snap = await group().catch(() => null);
    const settle = Date.now() + 10_000;
    while (snap?.members.filter((m) => m.alive).length !== 3) {
      if (Date.now() > settle) break;
      await wait(200);
      snap = await group().catch(() => null);
    }
    rows['Redis killed mid-cycle'] = {
      'back in rotation after the freeze, max ms': Math.max(...backAt),
      'members after restart': snap?.members.filter((m) => m.alive).length ?? 0,
      'slots held': snap?.members.filter((m) => m.holdsSlot).length ?? -1,
    };
    expect(apps.every((a) => a.proc.exitCode === null && a.proc.signalCode === null)).toBe(true);
    const unhandled = apps.flatMap((a) =>
      logsOf(a.proc).filter((l) => /unhandled|uncaught|ERR_UNHANDLED/i.test(l)),
    );
    expect(unhandled).toEqual([]);
    expect(snap?.members.filter((m) => m.alive)).toHaveLength(3);
    expect(snap?.members.filter((m) => m.holdsSlot)).toEqual([]);
  });
});
