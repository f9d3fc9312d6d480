import { afterEach, expect, it } from 'vitest';
import { doc, freeze, rfc1123, setup, T0 } from './helpers.js';

// Issue 19: Microsoft's Scheduled Events mock renews an event's id at the Scheduled ->
// Started transition. When the freeze came before the first Started document, the guard
// took the renamed event for a new maintenance, drained again and stayed out of rotation
// until it left the document (60 s in the reproduction).

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

it('an event renamed at Started after the freeze was seen is the same maintenance: no second drain', async () => {
  const s = setup({ approve: 'solo' });
  cleanups.push(() => s.guard.stop());
  const resumed: unknown[] = [];
  s.guard.on('resumed', (r) => resumed.push(r));
  await s.guard.start();
  s.source.publish(doc([freeze({ EventId: 'E-OLD', NotBefore: rfc1123(T0 + 30_000) })]));
  await s.clock.advance(6_000);
  expect(s.guard.state).toBe('ready');
  expect(s.source.approvals).toEqual(['E-OLD']);
  // The VM freezes 5 s right after the approval, before any Started document...
  await s.clock.stop(5_000);
  await s.clock.flush();
  // ...then the document lists the same maintenance under a new id, Started.
  s.source.publish(doc([freeze({ EventId: 'E-NEW', EventStatus: 'Started', NotBefore: '' })]));
  await s.clock.advance(1_000);
  expect(s.guard.state).toBe('idle');
  // The maintenance ran: resumed, not cancelled.
  expect(resumed).toMatchObject([{ cancelled: false }]);
  expect(s.guard.isReady()).toBe(true);
  await s.clock.advance(60_000);
  expect(s.guard.isReady()).toBe(true);
  expect(s.states.filter((x) => x === 'preparing')).toHaveLength(1);
  s.source.publish(doc([]));
  await s.clock.flush();
  expect(s.guard.state).toBe('idle');
});
