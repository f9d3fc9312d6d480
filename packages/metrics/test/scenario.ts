import { createGuard, FreezeguardError, type Guard, type SourceContext } from '@freezeguard/core';
import { sleep } from '@freezeguard/core/adapter';
import { FakeClock, MemorySource, recordingLogger } from '@freezeguard/core/testing';

export const T0 = Date.UTC(2026, 3, 11, 22, 0, 0);

/** A MemorySource that can also report a failed poll, as a real source does. */
class FailingSource extends MemorySource {
  #ctx: SourceContext | null = null;
  override start(context: SourceContext): void {
    this.#ctx = context;
    super.start(context);
  }
  fail(code: 'ERR_IMDS_HTTP' | 'ERR_IMDS_TIMEOUT'): void {
    this.#ctx?.onError(new FreezeguardError(code, `simulated ${code}`), 1);
  }
}

function freeze(overrides: Record<string, unknown> = {}) {
  return {
    EventId: 'EV-1',
    EventType: 'Freeze',
    EventStatus: 'Scheduled',
    ResourceType: 'VirtualMachine',
    Resources: ['vm-1'],
    NotBefore: new Date(T0 + 15 * 60_000).toUTCString(),
    DurationInSeconds: 5,
    ...overrides,
  };
}

/** A guard that has not started yet, on a fake clock, with three participants. */
export function makeGuard(): { guard: Guard; clock: FakeClock; source: FailingSource } {
  const clock = new FakeClock({ now: T0 });
  const source = new FailingSource({ resourceName: 'vm-1' });
  const guard = createGuard({
    source,
    clock,
    timers: clock,
    logger: recordingLogger(),
    resourceName: 'vm-1',
    approve: 'solo',
    leadTimeMs: 60_000,
    drainDelayMs: 5_000,
  });
  // 2 s on the fake clock: lands between the 1 s and 2.5 s participant buckets.
  guard.use({ name: 'lb', phase: 'traffic', prepare: () => sleep(clock, 2_000) });
  guard.use({
    name: 'queue',
    phase: 'work',
    // A failed prepare would forbid the approval the metrics are checked for: this
    // participant fails on resume instead.
    prepare: () => {},
    resume: () => {
      throw new Error('broker unreachable');
    },
  });
  return { guard, clock, source };
}

/**
 * One full maintenance cycle: an irrelevant Reboot for another VM and a Freeze for us
 * announced 15 min ahead, one failed poll, prepare at NotBefore − 60 s (approved: solo),
 * the event starts, the process is stopped 5 s, resume. `atReady` runs while prepared.
 */
export async function runCycle(
  s: ReturnType<typeof makeGuard>,
  atReady: () => void | Promise<void> = () => {},
): Promise<void> {
  const { clock, source, guard } = s;
  await guard.start();
  const reboot = freeze({ EventId: 'EV-2', EventType: 'Reboot', Resources: ['vm-2'] });
  source.publish({ DocumentIncarnation: 1, Events: [freeze(), reboot] });
  await clock.flush();
  source.fail('ERR_IMDS_HTTP');
  // The same events in a newer document must not be counted again.
  source.publish({ DocumentIncarnation: 2, Events: [freeze(), reboot] });
  await clock.advance(14 * 60_000);
  if (guard.state !== 'preparing') throw new Error(`expected preparing, got ${guard.state}`);
  await clock.advance(5_000);
  if ((guard.state as string) !== 'ready') throw new Error(`expected ready, got ${guard.state}`);
  await atReady();
  source.publish({
    DocumentIncarnation: 3,
    Events: [freeze({ EventStatus: 'Started', NotBefore: '' }), reboot],
  });
  await clock.flush();
  await clock.stop(5_000);
  await clock.flush();
  if ((guard.state as string) !== 'idle') throw new Error(`expected idle, got ${guard.state}`);
  source.publish({ DocumentIncarnation: 4, Events: [] });
  await clock.flush();
}
