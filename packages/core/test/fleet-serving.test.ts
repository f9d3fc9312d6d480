import { expect, it } from 'vitest';
import { createHttpGuard } from '../src/adapter.js';
import type { FleetContext, FleetCoordinator } from '../src/fleet.js';
import { createGuard, type GuardOptions } from '../src/index.js';
import { FakeClock, MemorySource, recordingLogger } from '../src/testing.js';
import { T0 } from './helpers.js';

// Issue 19: a member whose readiness checks failed (its balancer took it out) still told
// the fleet it was serving, so the drain-slot arithmetic let its pair drain too: both
// members of a pair answered 503 at once.

function recordingFleet() {
  let context: FleetContext | null = null;
  const fleet: FleetCoordinator = {
    kind: 'recording',
    wrapSource: (inner) => inner,
    start(ctx) {
      context = ctx;
    },
    stop: async () => {},
    acquireSlot: async () => 'granted',
    releaseSlot: async () => {},
    prepared: async () => false,
    status: () => ({ group: 'g', memberId: 'm', connected: true, members: [] }) as never,
  };
  return { fleet, member: () => context!.member(), context: () => context! };
}

/** A guard on `fleet` under `approve: 'fleet'`, on a fake clock, for VM `vm-1`. */
function fleetGuard(
  fleet: FleetCoordinator,
  clock: FakeClock,
  options: Partial<GuardOptions> = {},
) {
  const source = new MemorySource({ resourceName: 'vm-1' });
  const guard = createGuard({
    source,
    resourceName: 'vm-1',
    clock,
    timers: clock,
    logger: recordingLogger(),
    fleet,
    approve: 'fleet',
    ...options,
  });
  return { guard, source };
}

it('a member whose readiness checks fail is not serving for the fleet, and is again once they pass', async () => {
  const clock = new FakeClock({ now: T0 });
  const { fleet, member } = recordingFleet();
  const { guard } = fleetGuard(fleet, clock);
  let dbUp = true;
  const http = createHttpGuard(guard, { checks: { db: () => dbUp } });
  await guard.start();
  try {
    expect(member().ready).toBe(true);
    dbUp = false;
    expect((await http.probe('ready')).status).toBe(503);
    expect(member().ready).toBe(false);
    dbUp = true;
    expect((await http.probe('ready')).status).toBe(200);
    expect(member().ready).toBe(true);
  } finally {
    http.close();
    await guard.stop();
  }
});

it('a drain slot granted late gives the traffic phase a fresh balancer wait', async () => {
  const clock = new FakeClock({ now: T0 });
  const { fleet } = recordingFleet();
  const grantAt = T0 + 30_000;
  fleet.acquireSlot = async () => (clock.now() >= grantAt ? 'granted' : 'denied');
  const { guard, source } = fleetGuard(fleet, clock, { drainDelayMs: 5_000 });
  const calls: { at: number; drainUntil: number }[] = [];
  guard.use({
    name: 'lb',
    phase: 'traffic',
    prepare: ({ drainUntil }) => {
      calls.push({ at: clock.now(), drainUntil });
    },
  });
  await guard.start();
  try {
    source.announce({
      EventId: 'E-late',
      NotBefore: new Date(T0 + 15 * 60_000).toUTCString(),
    });
    await clock.advance(10_000);
    expect(calls).toEqual([]); // refused: still serving
    await clock.advance(30_000);
    expect(calls).toHaveLength(1);
    // Called once the slot came, with the whole drain ahead of it, not the first plan's.
    expect(calls[0]!.at).toBeGreaterThanOrEqual(grantAt);
    expect(calls[0]!.drainUntil - calls[0]!.at).toBe(5_000);
  } finally {
    await guard.stop();
  }
});

// Issue 19: a member reported prepared once; when the one member it waited for then left
// (killed, or frozen past its TTL), the fleet would have named it, but it never asked
// again: the VM was approved only at NotBefore.
it('a member reports again when the fleet changes, and approves once named', async () => {
  const clock = new FakeClock({ now: T0 });
  let othersPrepared = false;
  const asked: number[] = [];
  const { fleet, context } = recordingFleet();
  let named = false;
  fleet.prepared = async () => {
    asked.push(clock.now());
    if (!othersPrepared || named) return false;
    named = true;
    return true;
  };
  const { guard, source } = fleetGuard(fleet, clock, { drainDelayMs: 2_000, leadTimeMs: 60_000 });
  await guard.start();
  try {
    source.announce({
      EventId: 'E-wait',
      EventStatus: 'Scheduled',
      NotBefore: new Date(T0 + 50_000).toUTCString(),
    });
    await clock.advance(10_000);
    expect(asked).toHaveLength(1);
    expect(source.approvals).toEqual([]);
    // The member it waited for left: the fleet says so, and now names this one.
    othersPrepared = true;
    context().onChange();
    await clock.advance(1_000);
    expect(asked).toHaveLength(2);
    expect(source.approvals).toEqual(['E-wait']);
    // Further changes ask nothing more: it was named.
    context().onChange();
    await clock.advance(1_000);
    expect(asked).toHaveLength(2);
    expect(source.approvals).toEqual(['E-wait']);
  } finally {
    await guard.stop();
  }
});
