import { expect, it } from 'vitest';
import { createHttpGuard } from '../src/adapter.js';
import type { FleetContext, FleetCoordinator } from '../src/fleet.js';
import { createGuard } from '../src/index.js';
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
  return { fleet, member: () => context!.member() };
}

it('a member whose readiness checks fail is not serving for the fleet, and is again once they pass', async () => {
  const clock = new FakeClock({ now: T0 });
  const { fleet, member } = recordingFleet();
  const guard = createGuard({
    source: new MemorySource({ resourceName: 'vm-1' }),
    resourceName: 'vm-1',
    clock,
    timers: clock,
    logger: recordingLogger(),
    fleet,
    approve: 'fleet',
  });
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
