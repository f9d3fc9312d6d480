import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { type Simulator, startSimulator } from '@freezeguard/simulator';
import { type RedisHandle, startRedis } from '@freezeguard/test-utils';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { logsOf, spawnTracked, stopAll } from '../helpers/processes.js';
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
