import { afterEach, expect, it } from 'vitest';
import { createGuard } from '../src/index.js';
import { FakeClock, MemorySource, recordingLogger } from '../src/testing.js';
import { doc, freeze, T0 } from './helpers.js';

// Issue 19: a source that answers an empty VM name (an empty IMDS `compute/name`) threw
// inside a promise's success handler: an unhandled rejection, which ends a Node process.

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});

it('an empty VM name never throws: the guard stays idle, says why, retries, never approves', async () => {
  process.on('unhandledRejection', onUnhandled);
  const clock = new FakeClock({ now: T0 });
  const source = new MemorySource();
  let answer = '';
  source.resolveResourceName = async () => answer;
  const logger = recordingLogger();
  const guard = createGuard({ source, clock, timers: clock, logger, approve: 'always' });
  const prev = process.env.FREEZEGUARD_RESOURCE_NAME;
  delete process.env.FREEZEGUARD_RESOURCE_NAME;
  try {
    await guard.start();
    await clock.flush();
    source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await clock.advance(10_000);
    // Let any rejection reach the process before looking.
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
    expect(guard.state).toBe('idle');
    expect(source.approvals).toEqual([]);
    expect(guard.status().resourceNameError).toMatch(/empty resource name/);
    expect(logger.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toContain(
      'freezeguard: cannot read this VM name; acting on no event until it is known',
    );
    // The source learns its name: the retry picks it up and the guard acts.
    answer = 'vm-1';
    await clock.advance(60_000);
    expect(guard.resourceName).toBe('vm-1');
    expect(guard.status().resourceNameError).toBeNull();
  } finally {
    await guard.stop();
    if (prev !== undefined) process.env.FREEZEGUARD_RESOURCE_NAME = prev;
  }
});
