import { gcpMaintenanceEvents } from '@freezeguard/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type GcpSimulator, startSimulator } from '../src/index.js';
import { until, delay as wait } from '../src/process.js';
import { recordSource, withDeadProxy } from './source-harness.js';

let sim: GcpSimulator;
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (stops.length) await stops.pop()!();
  await sim?.close();
});

async function gce(
  options: Parameters<typeof startSimulator>[0] & { cloud: 'gcp' } = { cloud: 'gcp' },
) {
  sim = await startSimulator({ resourceName: 'vm-1', ...options });
  return sim;
}

function watchSource(options: Parameters<typeof gcpMaintenanceEvents>[0] = {}) {
  const source = gcpMaintenanceEvents({
    endpoint: sim.url,
    resourceName: undefined,
    pollIntervalMs: 200,
    maxBackoffMs: 1_000,
    ...options,
  });
  return recordSource(source, stops);
}

const saved = process.env.FREEZEGUARD_RESOURCE_NAME;
delete process.env.FREEZEGUARD_RESOURCE_NAME;
afterEach(() => {
  if (saved !== undefined) process.env.FREEZEGUARD_RESOURCE_NAME = saved;
  else delete process.env.FREEZEGUARD_RESOURCE_NAME;
});

describe('gcpMaintenanceEvents against the GCE emulator', { timeout: 20_000 }, () => {
  it('reads instance/id as the VM id: each emulator is its own VM unless told its id', async () => {
    const other = await startSimulator({ cloud: 'gcp', resourceName: 'vm-1' });
    stops.push(() => other.close());
    await gce({ cloud: 'gcp', instanceId: '4520031799277581759' });
    const id = (url: string) => gcpMaintenanceEvents({ endpoint: url }).resolveVmId?.();
    expect(await id(sim.url)).toBe('4520031799277581759');
    // Same name, another VM: the ids differ (GCE names are unique per zone only).
    expect(await id(other.url)).toMatch(/^[1-9]\d{18}$/);
    expect(await id(other.url)).not.toBe('4520031799277581759');
  });

  it('sends Metadata-Flavor: Google, never through HTTP(S)_PROXY or the global dispatcher', async () => {
    await gce();
    await withDeadProxy(async () => {
      const w = watchSource();
      await until(() => w.docs.length >= 3, 5_000, 'three documents');
      expect(w.errors).toEqual([]);
      expect(w.last().events).toEqual([]);
      expect(sim.requests.length).toBeGreaterThan(0);
      for (const r of sim.requests) {
        expect(r.headers['metadata-flavor']).toBe('Google');
        expect(r.headers['x-forwarded-for']).toBeUndefined();
        // upcoming-maintenance answers 503 until this VM has had a notification
        expect(r.status).toBe(r.path.includes('upcoming-maintenance') ? 503 : 200);
      }
      expect(w.source.supportsApproval).toBe(false);
      await expect(w.source.approve('x')).rejects.toMatchObject({
        name: 'FreezeguardError',
        code: 'ERR_APPROVAL_UNSUPPORTED',
      });
      expect(await w.source.resolveResourceName()).toBe('vm-1');
    });
  });

  it('watches with hanging GETs (wait_for_change, last_etag, timeout_sec), not tight polling', async () => {
    await gce();
    const w = watchSource({ hangTimeoutSec: 30 });
    // maintenance-event and preempted hang; upcoming-maintenance (503) is rechecked later
    await until(() => sim.hanging >= 2, 5_000, 'two hanging GETs');
    const settled = sim.requests.length;
    await wait(1_500);
    // Idle: nothing new while the GETs hang.
    expect(sim.requests.length).toBe(settled);
    const hanging = sim.requests.filter((r) => r.path.includes('wait_for_change=true'));
    expect(hanging.length).toBeGreaterThanOrEqual(2);
    for (const r of hanging) {
      expect(r.path).toMatch(/last_etag=[0-9a-f]+/);
      expect(r.path).toMatch(/timeout_sec=30/);
    }
    // A change answers the hanging GET at once.
    const t0 = Date.now();
    sim.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
    await until(() => w.last().events.length === 1, 2_000, 'the migration event');
    // at once, not at the next poll (the GET would otherwise hang for 30 s)
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(w.errors).toEqual([]);
  });

  it('a hanging GET that times out on the server is not a client timeout, and is re-issued', async () => {
    await gce();
    // The client's own timeout (300 ms) is far below timeout_sec: it must add the hang.
    const w = watchSource({ hangTimeoutSec: 1, requestTimeoutMs: 300 });
    await wait(3_500);
    expect(w.errors).toEqual([]);
    const hanging = sim.requests.filter(
      (r) => r.path.includes('maintenance-event') && r.path.includes('wait_for_change'),
    );
    expect(hanging.length).toBeGreaterThanOrEqual(2);
    expect(hanging.length).toBeLessThanOrEqual(5);
    expect(w.last().events).toEqual([]);
  });

  it('live migration: a Started Freeze for this VM that leaves when the value returns to NONE', async () => {
    await gce();
    const w = watchSource();
    await until(() => sim.hanging >= 2, 5_000, 'hanging GETs');
    const t0 = Date.now();
    sim.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
    await until(() => w.last().events.length === 1, 3_000, 'the migration event');
    const doc = w.last();
    const ev = doc.events[0]!;
    expect(ev).toMatchObject({
      kind: 'Freeze',
      status: 'Started',
      resources: ['vm-1'],
      origin: 'Platform',
      resourceType: 'VirtualMachine',
    });
    expect(ev.description).toMatch(/GCE live migration/);
    expect(Math.abs(ev.notBefore! - t0)).toBeLessThan(3_000);
    // Stable across reads.
    await until(() => sim.hanging >= 2, 5_000, 'hanging GETs');
    sim.setPreempted(false);
    await until(() => w.docs.length > w.docs.indexOf(doc) + 1, 3_000, 'another document');
    expect(w.last().events[0]!.id).toBe(ev.id);
    expect(w.last().incarnation).toBe(doc.incarnation);
    sim.setMaintenanceEvent('NONE');
    await until(() => w.last().events.length === 0, 3_000, 'the event leaving');
    expect(w.last().incarnation).toBe(doc.incarnation + 1);
    // A second migration is a new event.
    sim.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
    await until(() => w.last().events.length === 1, 3_000, 'the second migration');
    expect(w.last().events[0]!.id).not.toBe(ev.id);
    expect(w.errors).toEqual([]);
  });

  it('TERMINATE_ON_HOST_MAINTENANCE → Terminate in 60 s; preempted TRUE → Preempt in 30 s', async () => {
    await gce();
    const w = watchSource();
    await until(() => sim.hanging >= 2, 5_000, 'hanging GETs');
    const t0 = Date.now();
    sim.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE');
    sim.setPreempted(true);
    await until(() => w.last().events.length === 2, 3_000, 'both events');
    const byType = Object.fromEntries(w.last().events.map((e) => [e.kind, e]));
    expect(byType.Terminate!.status).toBe('Scheduled');
    expect(byType.Terminate!.notBefore! - t0).toBeGreaterThan(58_000);
    expect(byType.Terminate!.notBefore! - t0).toBeLessThan(64_000);
    expect(byType.Preempt!.notBefore! - t0).toBeGreaterThan(28_000);
    expect(byType.Preempt!.notBefore! - t0).toBeLessThan(34_000);
    expect(byType.Preempt!.resources).toEqual(['vm-1']);
  });

  it('upcoming-maintenance: a Terminate at the window start on a VM that stops, nothing on one that migrates', async () => {
    const start = new Date(Date.now() + 3 * 3_600_000);
    start.setUTCMilliseconds(0);
    const window = {
      type: 'SCHEDULED',
      canReschedule: true,
      windowStartTime: start.toISOString(),
      windowEndTime: new Date(start.getTime() + 3_600_000).toISOString(),
      maintenanceStatus: 'PENDING',
    } as const;
    await gce({ cloud: 'gcp', onHostMaintenance: 'TERMINATE' });
    sim.setUpcomingMaintenance(window);
    const w = watchSource();
    await until(() => w.last()?.events.length === 1, 5_000, 'the window');
    expect(w.last().events[0]).toMatchObject({
      kind: 'Terminate',
      status: 'Scheduled',
      notBefore: start.getTime(),
    });
    sim.setUpcomingMaintenance(null);
    await until(() => w.last().events.length === 0, 5_000, 'the window leaving');
    await stops.pop()!();
    await sim.close();

    await gce({ cloud: 'gcp', onHostMaintenance: 'MIGRATE' });
    sim.setUpcomingMaintenance(window);
    const m = watchSource();
    await until(() => sim.hanging >= 3, 5_000, 'all three keys hanging');
    expect(m.last().events).toEqual([]);
    expect(m.errors).toEqual([]);
  });

  it('upcoming-maintenance as GCE serves it: asked with ?alt=json, snake_case string values, { } for none', async () => {
    const start = new Date(Date.now() + 5 * 3_600_000);
    start.setUTCMilliseconds(0);
    await gce({ cloud: 'gcp', onHostMaintenance: 'TERMINATE' });
    sim.setUpcomingMaintenance({
      type: 'SCHEDULED',
      canReschedule: true,
      windowStartTime: start.toISOString(),
      windowEndTime: new Date(start.getTime() + 3_600_000).toISOString(),
      maintenanceStatus: 'PENDING',
    });
    const w = watchSource();
    await until(() => w.last()?.events.length === 1, 5_000, 'the window');
    expect(w.last().events[0]).toMatchObject({
      kind: 'Terminate',
      status: 'Scheduled',
      notBefore: start.getTime(),
    });
    const asked = sim.requests.filter((r) => r.path.includes('upcoming-maintenance'));
    expect(asked.length).toBeGreaterThan(0);
    for (const r of asked) expect(r.path).toMatch(/[?&]alt=json(&|$)/);
    // What the emulator served is what GCE serves.
    const body = await fetch(
      `${sim.url}/computeMetadata/v1/instance/upcoming-maintenance?alt=json`,
      {
        headers: { 'Metadata-Flavor': 'Google' },
      },
    ).then((r) => r.json());
    expect(body).toEqual({
      can_reschedule: 'true',
      maintenance_status: 'PENDING',
      type: 'SCHEDULED',
      window_start_time: start.toISOString(),
      window_end_time: new Date(start.getTime() + 3_600_000).toISOString(),
    });
    sim.setUpcomingMaintenance(null);
    await until(() => w.last().events.length === 0, 5_000, 'the window leaving');
    const none = await fetch(
      `${sim.url}/computeMetadata/v1/instance/upcoming-maintenance?alt=json`,
      {
        headers: { 'Metadata-Flavor': 'Google' },
      },
    );
    expect(none.status).toBe(200);
    expect(await none.json()).toEqual({});
    expect(w.errors).toEqual([]);
  });

  it('503 "no notifications have been received yet" is no window, not a failure: no backoff, a MIGRATE seen at once', async () => {
    await gce();
    const w = watchSource({ upcomingRecheckMs: 250, hangTimeoutSec: 30 });
    await until(
      () => sim.requests.filter((r) => r.status === 503).length >= 3,
      5_000,
      'three 503 answers',
    );
    const res = await fetch(
      `${sim.url}/computeMetadata/v1/instance/upcoming-maintenance?alt=json`,
      {
        headers: { 'Metadata-Flavor': 'Google' },
      },
    );
    expect(res.status).toBe(503);
    expect(await res.text()).toMatch(/no notifications have been received yet/);
    expect(w.errors).toEqual([]);
    expect(w.source.health()).toMatchObject({ consecutiveFailures: 0, lastError: null });
    expect(w.logger.lines.filter((l) => l.level === 'warn')).toEqual([]);
    sim.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
    await until(() => w.last().events.length === 1, 3_000, 'the migration event');
    expect(w.errors).toEqual([]);
  });

  it('SHUTDOWN_ON_HOST_MAINTENANCE is a stop with the 60 s notice, not an unknown value', async () => {
    await gce();
    const w = watchSource();
    await until(() => sim.hanging >= 2, 5_000, 'hanging GETs');
    const t0 = Date.now();
    sim.setMaintenanceEvent('SHUTDOWN_ON_HOST_MAINTENANCE');
    await until(() => w.last().events.length === 1, 3_000, 'the event');
    const ev = w.last().events[0]!;
    expect(ev).toMatchObject({ kind: 'Terminate', status: 'Scheduled' });
    expect(ev.description).toMatch(/SHUTDOWN_ON_HOST_MAINTENANCE/);
    expect(ev.notBefore! - t0).toBeGreaterThan(58_000);
    expect(ev.notBefore! - t0).toBeLessThan(64_000);
  });

  it.each([
    ['500', { status: 500 }, 'ERR_IMDS_HTTP'],
    ['an answer without Metadata-Flavor', { noFlavor: true }, 'ERR_IMDS_HTTP'],
    ['a garbage value', { garbage: true }, 'ERR_BAD_DOCUMENT'],
    ['a body over 1 MiB', { oversized: true }, 'ERR_BODY_TOO_LARGE'],
    ['a reset', { reset: true }, 'ERR_IMDS_UNREACHABLE'],
  ])('%s is reported, logged once, and never blinds the source', async (_n, fault, code) => {
    await gce();
    sim.fault({ ...fault, times: 2 });
    const w = watchSource({ hangTimeoutSec: 2 });
    await until(() => w.errors.length >= 2, 10_000, 'two errors');
    expect(w.errors.every((e) => e.error.code === code)).toBe(true);
    // Still sees what happens.
    sim.setPreempted(true);
    await until(() => w.last()?.events.some((e) => e.kind === 'Preempt'), 10_000, 'preempt');
    expect(w.logger.lines.filter((l) => l.level === 'warn').length).toBeLessThanOrEqual(2);
  });

  it('reports the Date header of good answers as a time reference', async () => {
    await gce();
    const w = watchSource();
    await until(() => w.times.length >= 2, 5_000, 'time references');
    const s = w.times[0]!;
    expect(s).toMatchObject({ resolutionMs: 1000, origin: 'imds-date' });
    expect(Math.abs(s.referenceMs - s.wall)).toBeLessThan(2_000);
  });

  it('checks its options', () => {
    expect(() => gcpMaintenanceEvents({ hangTimeoutSec: 0 })).toThrow(/`hangTimeoutSec`/);
    expect(() => gcpMaintenanceEvents({ pollIntervalMs: 50 })).toThrow(/`pollIntervalMs`/);
    expect(() => gcpMaintenanceEvents({ endpoint: 'https://x' })).toThrow(/`endpoint`/);
    const before = process.env.FREEZEGUARD_IMDS_ENDPOINT;
    delete process.env.FREEZEGUARD_IMDS_ENDPOINT;
    try {
      expect(gcpMaintenanceEvents().endpoint).toBe('http://metadata.google.internal');
    } finally {
      if (before !== undefined) process.env.FREEZEGUARD_IMDS_ENDPOINT = before;
    }
  });
});
