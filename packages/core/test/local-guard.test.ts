import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator } from '@freezeguard/simulator';
import { afterEach, describe, expect, it } from 'vitest';
import { azureScheduledEvents, createGuard, localCoordinator, silentLogger } from '../src/index.js';

// Guards of one VM wired to the VM-local coordinator (`fleet: localCoordinator()`,
// `approve: 'fleet'`): one metadata poller, and one StartRequests once every guard of the
// VM has prepared — never for an event that also lists other VMs.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const until = async (check: () => boolean, ms: number, what: string) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

async function vm(
  prepareMs: readonly number[],
  modes: readonly ('active' | 'observe')[] = prepareMs.map(() => 'active'),
) {
  const sim = await startSimulator({ resourceName: 'vm-1' });
  cleanups.push(() => sim.close());
  const directory = mkdtempSync(join(tmpdir(), 'fg-local-guard-'));
  cleanups.push(() => rmSync(directory, { recursive: true, force: true }));
  const preparedAt: number[] = [];
  const guards = prepareMs.map((ms, i) => {
    const guard = createGuard({
      mode: modes[i]!,
      source: azureScheduledEvents({ endpoint: sim.url }),
      fleet: localCoordinator({ directory, logger: silentLogger }),
      approve: 'fleet',
      drainDelayMs: 0,
      resourceName: 'vm-1',
      logger: silentLogger,
    });
    guard.use({
      name: `work-${ms}`,
      phase: 'work',
      prepare: () =>
        new Promise<void>((r) =>
          setTimeout(() => {
            preparedAt.push(Date.now());
            r();
          }, ms),
        ),
    });
    cleanups.push(() => guard.stop());
    return guard;
  });
  await Promise.all(guards.map((g) => g.start()));
  // One of them polls, the others follow.
  await until(
    () => guards.filter((g) => g.status().fleet?.poller).length === 1,
    10_000,
    'single poller',
  );
  const approvals = () => sim.requests.filter((r) => r.method === 'POST').length;
  return { sim, guards, preparedAt, approvals };
}

describe('guards on one VM with localCoordinator()', { timeout: 60_000 }, () => {
  it('send one StartRequests, after the slowest has prepared', async () => {
    const v = await vm([300, 2500, 1200]);
    const event = v.sim.schedule({ type: 'Freeze', notBeforeInMs: 30_000, autoStart: false });
    let approvedAt = 0;
    v.sim.on('approved', () => {
      approvedAt ||= Date.now();
    });
    await until(() => v.approvals() > 0, 20_000, 'StartRequests');
    await new Promise((r) => setTimeout(r, 2000));
    expect(v.approvals()).toBe(1);
    expect(v.preparedAt).toHaveLength(3);
    expect(approvedAt).toBeGreaterThanOrEqual(Math.max(...v.preparedAt));
    v.sim.complete(event.EventId);
  });

  it('do not wait for a guard in observe mode: it prepares nothing', async () => {
    const v = await vm([300, 900, 200], ['active', 'active', 'observe']);
    const event = v.sim.schedule({ type: 'Freeze', notBeforeInMs: 30_000, autoStart: false });
    let approvedAt = 0;
    v.sim.on('approved', () => {
      approvedAt ||= Date.now();
    });
    await until(() => v.approvals() > 0, 20_000, 'StartRequests');
    await new Promise((r) => setTimeout(r, 1500));
    expect(v.approvals()).toBe(1);
    // The observer's participant was never called; the two others prepared first.
    expect(v.preparedAt).toHaveLength(2);
    expect(approvedAt).toBeGreaterThanOrEqual(Math.max(...v.preparedAt));
    v.sim.complete(event.EventId);
  });

  it('leave an event that lists other VMs too to NotBefore: approving it would release them', async () => {
    const v = await vm([100, 200]);
    v.sim.schedule({
      type: 'Freeze',
      notBeforeInMs: 30_000,
      resources: ['vm-1', 'vm-2'],
      autoStart: false,
    });
    await until(() => v.preparedAt.length === 2, 10_000, 'both prepared');
    await new Promise((r) => setTimeout(r, 3000));
    expect(v.approvals()).toBe(0);
  });
});
