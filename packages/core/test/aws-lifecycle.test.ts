import { afterEach, describe, expect, it } from 'vitest';
import { doc, freeze, rfc1123, setup, T0 } from './helpers.js';

// The documents the EC2 source delivers for a scheduled system-maintenance, played to a
// guard on a fake clock: EC2 never says Started, so a completed event is listed Started
// once on its way out. That must end the cycle as resumed (with or without an observed
// pause) and never drain a second time; an event that just leaves is cancelled.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function ec2Guard() {
  const s = setup({ drainDelayMs: 1_000 });
  cleanups.push(() => s.guard.stop());
  await s.guard.start();
  const resumed: { cancelled: boolean; pausedMs: number }[] = [];
  s.guard.on('resumed', (r) => resumed.push({ cancelled: r.cancelled, pausedMs: r.pausedMs }));
  return { ...s, resumed };
}

const maintenance = (status: 'Scheduled' | 'Started') =>
  freeze({
    EventId: 'instance-event-0abc',
    EventStatus: status,
    NotBefore: rfc1123(T0 + 30_000),
    Description: 'EC2 scheduled event system-maintenance: Scheduled network maintenance',
    DurationInSeconds: -1,
  });

describe('a completed EC2 maintenance as the EC2 source lists it', () => {
  it('no pause observed (network maintenance): listed Started once, then gone -> resumed, not cancelled', async () => {
    const s = await ec2Guard();
    s.source.publish(doc([maintenance('Scheduled')]));
    await s.clock.advance(2_000);
    expect(s.guard.state).toBe('ready');
    await s.clock.advance(60_000); // the window is open; EC2 still lists it active
    s.source.publish(doc([maintenance('Scheduled')]));
    await s.clock.flush();
    s.source.publish(doc([maintenance('Started')])); // completed: listed Started once
    await s.clock.advance(200);
    s.source.publish(doc([]));
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
    expect(s.resumed).toEqual([{ cancelled: false, pausedMs: 0 }]);
    expect(s.states.filter((x) => x === 'preparing')).toHaveLength(1);
  });

  it('a pause observed in the window (power maintenance): resumed once at the completion, no second drain', async () => {
    const s = await ec2Guard();
    s.source.publish(doc([maintenance('Scheduled')]));
    await s.clock.advance(31_000);
    s.source.publish(doc([maintenance('Scheduled')]));
    await s.clock.flush();
    await s.clock.stop(5_000); // the instance is stopped by the host
    s.source.publish(doc([maintenance('Scheduled')]));
    await s.clock.advance(2_000);
    s.source.publish(doc([maintenance('Started')]));
    await s.clock.advance(200);
    s.source.publish(doc([]));
    await s.clock.advance(5_000);
    expect(s.guard.state).toBe('idle');
    expect(s.resumed).toHaveLength(1);
    expect(s.resumed[0]!.cancelled).toBe(false);
    expect(s.resumed[0]!.pausedMs).toBeGreaterThanOrEqual(4_900);
    expect(s.states.filter((x) => x === 'preparing')).toHaveLength(1);
  });

  it('a canceled one just leaves: cancelled', async () => {
    const s = await ec2Guard();
    s.source.publish(doc([maintenance('Scheduled')]));
    await s.clock.advance(2_000);
    expect(s.guard.state).toBe('ready');
    s.source.publish(doc([]));
    await s.clock.flush();
    expect(s.resumed).toEqual([{ cancelled: true, pausedMs: 0 }]);
  });
});
