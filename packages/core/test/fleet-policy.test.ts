import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Cycle,
  type CycleAction,
  isDraining,
  openCycle,
  reduceCycle,
  SLOT_RETRY_MS,
} from '../src/guard/cycle.js';
import { fleetApprovals, slotActions, slotRelease } from '../src/guard/fleet-policy.js';
import type { TrackedEvent } from '../src/guard/tracker.js';

const T0 = Date.UTC(2026, 5, 1);
const open = (): Cycle => openCycle({ serial: 1, ids: ['E1'], now: T0, local: false, fleet: true });
const run = (c: Cycle, ...actions: CycleAction[]) => actions.reduce(reduceCycle, c);

function tracked(id: string, resources: string[]): TrackedEvent {
  return {
    id,
    event: {
      id,
      kind: 'Freeze',
      resourceType: 'VirtualMachine',
      resources,
      status: 'Scheduled',
      notBefore: null,
    },
    present: true,
    active: true,
    relevant: true,
    reason: null,
    startedAt: null,
    firstSeenSeq: 1,
    lastScheduledSeq: 1,
    startedSeq: null,
  };
}

describe('drain slots (reduceCycle, slotActions)', () => {
  it('a new fleet cycle asks once; a refusal keeps it serving and asks again a second later', () => {
    let c = open();
    expect(slotActions(c, T0).askSlot).toBe(true);
    c = reduceCycle(c, { k: 'ask-slot' });
    expect(slotActions(c, T0).askSlot).toBe(false);
    c = reduceCycle(c, { k: 'slot-answer', answer: 'denied', now: T0 + 5 });
    expect([isDraining(c), c.drainedAt]).toEqual([false, null]);
    expect(slotActions(c, T0 + 5)).toEqual({
      askSlot: false,
      drain: false,
      wakeAt: T0 + 5 + SLOT_RETRY_MS,
    });
    expect(slotActions(c, T0 + 5 + SLOT_RETRY_MS).askSlot).toBe(true);
  });

  it('the fleet changing while a question is out makes a refused member ask again at once', () => {
    const c = run(
      open(),
      { k: 'ask-slot' },
      { k: 'slot-answer', answer: 'denied', now: T0 },
      { k: 'ask-slot' },
      { k: 'fleet-changed', now: T0 + 200 },
      { k: 'slot-answer', answer: 'denied', now: T0 + 210 },
    );
    expect(slotActions(c, T0 + 210).askSlot).toBe(true);
  });

  it('a slot granted after a refusal drains now and runs the traffic phase late', () => {
    let c = run(
      open(),
      { k: 'ask-slot' },
      { k: 'slot-answer', answer: 'denied', now: T0 },
      { k: 'ask-slot' },
      { k: 'slot-answer', answer: 'granted', now: T0 + 3000 },
    );
    expect([isDraining(c), c.drainedAt]).toEqual([true, T0 + 3000]);
    expect(slotActions(c, T0 + 3000).drain).toBe(true);
    c = reduceCycle(c, { k: 'traffic-started' });
    expect(slotActions(c, T0 + 3000)).toEqual({
      askSlot: false,
      drain: false,
      wakeAt: Number.POSITIVE_INFINITY,
    });
  });

  it('the slot goes back once resumed: at once when the guard stops, else after the drain delay', () => {
    const granted = run(
      open(),
      { k: 'ask-slot' },
      { k: 'slot-answer', answer: 'granted', now: T0 },
    );
    const resume = (stopping: boolean) =>
      run(granted, { k: 'resume', failsafe: false, stopping }, { k: 'resumed' });
    expect(
      slotRelease(reduceCycle(granted, { k: 'resume', failsafe: false, stopping: false })),
    ).toBe(null);
    expect(slotRelease(resume(false))).toBe('after-drain-delay');
    expect(slotRelease(resume(true))).toBe('now');
    const solo = run(
      open(),
      { k: 'ask-slot' },
      { k: 'slot-answer', answer: 'unavailable', now: T0 },
    );
    expect(
      slotRelease(run(solo, { k: 'resume', failsafe: false, stopping: false }, { k: 'resumed' })),
    ).toBe(null);
  });

  it('generated answer sequences: out of rotation exactly while not refused, never asking twice, no drain while refused', () => {
    const action = fc.oneof(
      fc.constant<CycleAction>({ k: 'ask-slot' }),
      fc.record({
        k: fc.constant('slot-answer' as const),
        answer: fc.constantFrom('granted' as const, 'denied' as const, 'unavailable' as const),
        now: fc.integer({ min: T0, max: T0 + 60_000 }),
      }),
      fc.record({
        k: fc.constant('fleet-changed' as const),
        now: fc.integer({ min: T0, max: T0 + 60_000 }),
      }),
      fc.constant<CycleAction>({ k: 'traffic-started' }),
    );
    fc.assert(
      fc.property(fc.array(action, { maxLength: 40 }), (actions) => {
        let c = open();
        for (const a of actions) {
          c = reduceCycle(c, a);
          expect(isDraining(c)).toBe(c.drainedAt !== null);
          if (c.asking || c.resuming) expect(slotActions(c, T0 + 120_000).askSlot).toBe(false);
          if (!isDraining(c)) expect(slotActions(c, T0).drain).toBe(false);
        }
      }),
      { seed: 0x5eed22, numRuns: 500 },
    );
  });
});

describe('approvals under approve: fleet (fleetApprovals)', () => {
  const alone = tracked('E1', ['vm-1']);
  const shared = tracked('E2', ['vm-1', 'vm-2']);
  const answered = (answer: 'granted' | 'denied' | 'unavailable') =>
    run(open(), { k: 'ask-slot' }, { k: 'slot-answer', answer, now: T0 });

  it('with a slot, reports every candidate once and approves only what the fleet named it last for', () => {
    const c = answered('granted');
    expect(fleetApprovals(c, [alone, shared], new Set())).toEqual({
      approve: [],
      report: ['E1', 'E2'],
    });
    const reported = run(c, { k: 'reported', id: 'E1' }, { k: 'reported', id: 'E2' });
    expect(fleetApprovals(reported, [alone, shared], new Set()).report).toEqual([]);
    const last = reduceCycle(reported, { k: 'last-to-prepare', id: 'E2' });
    expect(fleetApprovals(last, [], new Set()).approve).toEqual(['E2']);
    expect(fleetApprovals(last, [], new Set(['E2'])).approve).toEqual([]);
  });

  it('without a slot reports nothing; with the fleet unavailable approves solo events only', () => {
    expect(fleetApprovals(answered('denied'), [alone, shared], new Set())).toEqual({
      approve: [],
      report: [],
    });
    expect(fleetApprovals(answered('unavailable'), [alone, shared], new Set())).toEqual({
      approve: ['E1'],
      report: [],
    });
  });
});
