import { azureScheduledEvents, createGuard, systemClock, systemTimers } from '@freezeguard/core';
import { recordingLogger } from '@freezeguard/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../src/index.js';
import { until, delay as wait } from '../src/process.js';
import { recordSource, withDeadProxy } from './source-harness.js';

let sim: Simulator;
const stops: (() => Promise<void>)[] = [];
beforeEach(async () => {
  sim = await startSimulator({ resourceName: 'vm-1' });
});
afterEach(async () => {
  while (stops.length) await stops.pop()!();
  await sim.close();
});

function watchSource(options: Parameters<typeof azureScheduledEvents>[0] = {}) {
  const source = azureScheduledEvents({
    endpoint: sim.url,
    pollIntervalMs: 200,
    maxBackoffMs: 1_000,
    ...options,
  });
  return recordSource(source, stops);
}

function maxPerSecond(times: number[]): number {
  let best = 0;
  for (let i = 0; i < times.length; i++) {
    let n = 0;
    for (let j = i; j < times.length && times[j]! - times[i]! < 1000; j++) n++;
    best = Math.max(best, n);
  }
  return best;
}

describe('azureScheduledEvents against the emulator', () => {
  it('sends Metadata: true, no X-Forwarded-For, and bypasses HTTP(S)_PROXY and the global dispatcher', async () => {
    await withDeadProxy(async () => {
      const w = watchSource();
      await until(() => w.docs.length >= 2, 5_000, 'two documents');
      expect(w.errors).toEqual([]);
      for (const r of sim.requests) {
        expect(r.headers.metadata).toBe('true');
        expect(r.headers['x-forwarded-for']).toBeUndefined();
        expect(r.headers['proxy-authorization']).toBeUndefined();
      }
    });
  });

  it('honours the poll interval and uses If-None-Match', async () => {
    const w = watchSource({ pollIntervalMs: 250 });
    await wait(2_100);
    const times = sim.requests.map((r) => r.at);
    expect(times.length).toBeGreaterThanOrEqual(6);
    expect(times.length).toBeLessThanOrEqual(10);
    for (let i = 1; i < times.length; i++)
      expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(240);
    expect(sim.requests.filter((r) => r.status === 304).length).toBeGreaterThan(0);
    expect(w.docs.length).toBe(times.length);
  });

  it.each([
    ['500', { status: 500 }, 'ERR_IMDS_HTTP'],
    ['410', { status: 410 }, 'ERR_IMDS_HTTP'],
    ['429', { status: 429 }, 'ERR_IMDS_HTTP'],
    ['reset', { reset: true }, 'ERR_IMDS_UNREACHABLE'],
    ['garbage body', { garbage: true }, 'ERR_BAD_DOCUMENT'],
    ['body over 1 MiB', { oversized: true }, 'ERR_BODY_TOO_LARGE'],
    ['timeout', { delayMs: 800 }, 'ERR_IMDS_TIMEOUT'],
  ])('retries after %s, reports %s, logs once per streak, recovers', async (_name, fault, code) => {
    sim.fault({ ...fault, times: 3 });
    const w = watchSource({ requestTimeoutMs: 300, firstRequestTimeoutMs: 300 });
    await until(() => w.docs.length >= 1, 15_000, 'recovery');
    expect(w.errors.map((e) => e.streak)).toEqual([1, 2, 3]);
    expect(w.errors.every((e) => e.error.code === code)).toBe(true);
    expect(w.logger.lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(w.logger.lines.some((l) => l.level === 'info' && /reachable again/.test(l.msg))).toBe(
      true,
    );
    expect(w.source.health()).toMatchObject({ consecutiveFailures: 0, lastError: { code } });
  });

  it('backs off: retries never exceed 5 requests/s and never trigger 429', async () => {
    sim.fault({ status: 500, times: 12 });
    watchSource({ pollIntervalMs: 200, maxBackoffMs: 400 });
    await wait(4_000);
    expect(sim.requests.filter((r) => r.status === 429)).toEqual([]);
    expect(maxPerSecond(sim.requests.map((r) => r.at))).toBeLessThanOrEqual(5);
  });

  it('connection refused is retried without unhandled rejections', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const dead = await startSimulator();
      const url = dead.url;
      await dead.close();
      const source = azureScheduledEvents({
        endpoint: url,
        pollIntervalMs: 200,
        maxBackoffMs: 400,
      });
      const errors: string[] = [];
      source.start({
        logger: recordingLogger(),
        clock: systemClock,
        timers: systemTimers,
        onDocument: () => {},
        onError: (e) => errors.push(e.code),
      });
      stops.push(() => source.stop());
      await until(() => errors.length >= 3, 5_000, 'three errors');
      expect(new Set(errors)).toEqual(new Set(['ERR_IMDS_UNREACHABLE']));
      await wait(50);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('reads FREEZEGUARD_IMDS_ENDPOINT when no endpoint is given', () => {
    const saved = process.env.FREEZEGUARD_IMDS_ENDPOINT;
    process.env.FREEZEGUARD_IMDS_ENDPOINT = sim.url;
    try {
      expect(azureScheduledEvents().endpoint).toBe(sim.url);
    } finally {
      if (saved === undefined) delete process.env.FREEZEGUARD_IMDS_ENDPOINT;
      else process.env.FREEZEGUARD_IMDS_ENDPOINT = saved;
    }
    expect(() => azureScheduledEvents({ pollIntervalMs: 100 })).toThrow(/`pollIntervalMs`/);
    expect(() => azureScheduledEvents({ endpoint: 'https://x' })).toThrow(/`endpoint`/);
  });
});

describe('a guard against the emulator', () => {
  function guardFor(options: Parameters<typeof createGuard>[0] = {}) {
    const logger = recordingLogger();
    const guard = createGuard({
      source: azureScheduledEvents({ endpoint: sim.url, pollIntervalMs: 200 }),
      drainDelayMs: 300,
      logger,
      ...options,
    });
    stops.push(() => guard.stop());
    return { guard, logger };
  }

  it('a source that polled and was stopped still approves (a member whose lease went elsewhere)', async () => {
    const { source } = watchSource();
    await until(() => source.health().lastSuccessAt !== null, 5_000, 'a first read');
    await source.stop();
    const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 30_000, autoStart: false });
    await source.approve(ev.EventId);
    expect(sim.approvals.map((a) => a.eventId)).toEqual([ev.EventId]);
  });

  it('learns its name from compute/name, prepares, approves once (solo), resumes after removal', async () => {
    const saved = process.env.FREEZEGUARD_RESOURCE_NAME;
    delete process.env.FREEZEGUARD_RESOURCE_NAME;
    try {
      const { guard } = guardFor({ approve: 'solo', resumeWhen: 'removed' });
      const states: string[] = [];
      guard.on('state', (s) => states.push(s));
      await guard.start();
      await until(() => guard.resourceName === 'vm-1', 5_000, 'resource name');
      const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 30_000, autoStart: false });
      await until(() => sim.approvals.length > 0, 5_000, 'approval');
      expect(sim.approvals.map((a) => a.eventId)).toEqual([ev.EventId]);
      await until(() => guard.state === 'frozen', 5_000, 'frozen');
      await wait(600);
      expect(sim.approvals).toHaveLength(1);
      sim.complete(ev.EventId);
      await until(() => guard.state === 'idle', 5_000, 'idle');
      expect(states).toEqual(['preparing', 'ready', 'frozen', 'resuming', 'idle']);
    } finally {
      if (saved !== undefined) process.env.FREEZEGUARD_RESOURCE_NAME = saved;
    }
  });

  it('never approves an event that lists other VMs too under solo, nor one not naming us under always', async () => {
    const solo = guardFor({ approve: 'solo', resourceName: 'vm-1' });
    await solo.guard.start();
    sim.schedule({
      type: 'Freeze',
      notBeforeInMs: 30_000,
      autoStart: false,
      resources: ['vm-1', 'vm-2'],
    });
    sim.schedule({ type: 'Freeze', notBeforeInMs: 30_000, autoStart: false, resources: ['vm-3'] });
    await until(() => solo.guard.state === 'ready', 5_000, 'ready');
    await wait(500);
    expect(sim.approvals).toEqual([]);
  });

  it('a failing IMDS never makes the instance unhealthy', async () => {
    sim.fault({ status: 500, times: 1_000 });
    const { guard } = guardFor({ resourceName: 'vm-1' });
    const errors: string[] = [];
    guard.on('error', (e) => errors.push(e.code));
    await guard.start();
    await wait(1_500);
    expect(guard.isReady()).toBe(true);
    expect(guard.status().source.consecutiveFailures).toBeGreaterThan(1);
    expect(errors).toEqual(['ERR_IMDS_HTTP']);
  });
});
