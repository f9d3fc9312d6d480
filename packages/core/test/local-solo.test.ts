import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '@freezeguard/simulator';
import { afterEach, describe, expect, it } from 'vitest';
import type { MaintenanceDocument } from '../src/event.js';
import type { FleetContext } from '../src/fleet.js';
import { localCoordinator } from '../src/local/index.js';
import type { Logger } from '../src/logger.js';
import { awsInstanceEvents } from '../src/sources/aws.js';
import { azureScheduledEvents } from '../src/sources/azure.js';
import { gcpMaintenanceEvents } from '../src/sources/gcp.js';
import type { SourceContext } from '../src/sources/source.js';
import { MemorySource } from '../src/testing.js';
import { systemClock, systemTimers } from '../src/time/clock.js';

// The VM identity each source reads, and what a process does when it cannot join the
// other processes of its VM: one warning, then it polls and approves on its own.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder() {
  const warnings: string[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (obj: unknown, msg?: string) => {
      warnings.push(typeof obj === 'string' ? obj : (msg ?? ''));
    },
    error() {},
  };
  return { logger, warnings };
}

function contexts(logger: Logger, documents: MaintenanceDocument[]) {
  const source: SourceContext = {
    logger,
    clock: systemClock,
    timers: systemTimers,
    onDocument: (d) => documents.push(d),
    onError() {},
  };
  const fleet: FleetContext = {
    logger,
    clock: systemClock,
    timers: systemTimers,
    member: () => ({ state: 'idle', ready: true, resourceName: 'vm-1' }),
    onChange() {},
  };
  return { source, fleet };
}

describe('resolveVmId(): the unique id, from each cloud’s emulator', () => {
  it('Azure compute/vmId, GCE instance/id, EC2 instance-id (IMDSv2 token); an empty id is undefined', async () => {
    const azure = await startSimulator({ vmId: '0b6f2a4e-5c1d-4e8f-9a7b-1c2d3e4f5a6b' });
    const blank = await startSimulator({ vmId: '' });
    const gce = await startSimulator({ cloud: 'gcp', instanceId: '4520031799277581759' });
    const ec2 = await startSimulator({ cloud: 'aws', httpTokens: 'required' });
    cleanups.push(
      () => azure.close(),
      () => blank.close(),
      () => gce.close(),
      () => ec2.close(),
    );
    const a = azureScheduledEvents({ endpoint: azure.url });
    const b = azureScheduledEvents({ endpoint: blank.url });
    const g = gcpMaintenanceEvents({ endpoint: gce.url });
    const e = awsInstanceEvents({ endpoint: ec2.url, resourceName: 'not-the-id' });
    expect(await a.resolveVmId?.()).toBe('0b6f2a4e-5c1d-4e8f-9a7b-1c2d3e4f5a6b');
    expect(await b.resolveVmId?.()).toBeUndefined();
    expect(await g.resolveVmId?.()).toBe('4520031799277581759');
    expect(await e.resolveVmId?.()).toBe(ec2.resourceName);
    expect(azure.requests.find((r) => r.path.includes('compute/vmId'))?.headers.metadata).toBe(
      'true',
    );
    expect(ec2.tokensIssued).toBeGreaterThan(0);
    // Two emulators are two VMs, even with the same name.
    const other = await startSimulator({});
    cleanups.push(() => other.close());
    expect(other.vmId).not.toBe(azure.vmId);
    expect(other.resourceName).toBe(azure.resourceName);
    await Promise.all([a.stop(), b.stop(), g.stop(), e.stop()]);
  });
});

describe('no channel: one warning, then this process acts alone', () => {
  it('an unusable directory: polls itself, approves itself, status says why', async () => {
    const sim = await startSimulator({});
    cleanups.push(() => sim.close());
    const dir = mkdtempSync(join(tmpdir(), 'fg-local-solo-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const { logger, warnings } = recorder();
    const documents: MaintenanceDocument[] = [];
    const c = localCoordinator({ directory: join(file, 'below-a-file') });
    const source = c.wrapSource(azureScheduledEvents({ endpoint: sim.url }));
    const ctx = contexts(logger, documents);
    source.start(ctx.source);
    c.start(ctx.fleet);
    cleanups.push(async () => {
      await source.stop();
      await c.stop();
    });
    const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 60_000, autoStart: false });
    for (let i = 0; i < 100 && documents.length === 0; i++) await sleep(50);
    expect(c.role).toBe('solo');
    expect(documents.at(-1)?.events.map((e) => e.id)).toContain(ev.EventId);
    expect(await c.prepared(documents.at(-1)!.events[0]!)).toBe(true);
    expect(await c.acquireSlot([ev.EventId])).toBe('granted');
    const status = c.status();
    expect(status).toMatchObject({ kind: 'local', connected: false, poller: true });
    expect(status.lastError).toMatch(/not a directory|ENOTDIR|EEXIST/);
    await sleep(1200);
    expect(warnings.filter((w) => w.includes('no channel'))).toHaveLength(1);
  });

  it('a source that cannot tell the VM id never throws: one warning, solo', async () => {
    const { logger, warnings } = recorder();
    const documents: MaintenanceDocument[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'fg-local-solo-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const c = localCoordinator({ directory: dir });
    const inner = new MemorySource({ resourceName: 'vm-1' });
    const source = c.wrapSource(inner);
    const ctx = contexts(logger, documents);
    source.start(ctx.source);
    c.start(ctx.fleet);
    cleanups.push(async () => {
      await source.stop();
      await c.stop();
    });
    await sleep(50);
    inner.publish({ DocumentIncarnation: 1, Events: [] });
    await sleep(50);
    expect(c.role).toBe('solo');
    expect(documents).toHaveLength(1);
    expect(await source.resolveResourceName()).toBe('vm-1');
    expect(warnings.filter((w) => w.includes('no channel'))).toHaveLength(1);
  });
});

describe('two coordinators on one VM (one process, one directory)', () => {
  it('one polls, the other follows; status() lists both and who polls; stopping the poller hands over', async () => {
    const sim = await startSimulator({});
    cleanups.push(() => sim.close());
    const dir = mkdtempSync(join(tmpdir(), 'fg-local-two-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { logger } = recorder();
    const made = [0, 1].map(() => {
      const documents: MaintenanceDocument[] = [];
      const c = localCoordinator({ directory: dir });
      const source = c.wrapSource(azureScheduledEvents({ endpoint: sim.url }));
      const ctx = contexts(logger, documents);
      source.start(ctx.source);
      c.start(ctx.fleet);
      cleanups.push(async () => {
        await source.stop();
        await c.stop();
      });
      return { c, source, documents };
    });
    for (let i = 0; i < 100 && made.some((m) => m.c.status().members.length < 2); i++) {
      await sleep(50);
    }
    const roles = made.map((m) => m.c.role).sort();
    expect(roles).toEqual(['follower', 'leader']);
    const status = made[0]!.c.status();
    expect(status.group).toBe(sim.vmId);
    expect(status.connected).toBe(true);
    expect(status.members).toHaveLength(2);
    expect(status.members.filter((m) => m.poller)).toHaveLength(1);
    const leader = made.find((m) => m.c.role === 'leader')!;
    const follower = made.find((m) => m.c.role === 'follower')!;
    expect(await follower.source.resolveResourceName()).toBe('vm-1');
    await leader.source.stop();
    await leader.c.stop();
    for (let i = 0; i < 100 && follower.c.role !== 'leader'; i++) await sleep(20);
    expect(follower.c.role).toBe('leader');
  });
});
