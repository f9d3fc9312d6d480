import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createGuard, type FreezeguardError, type Participant } from '../src/index.js';
import { MemorySource } from '../src/testing.js';
import { doc, freeze, rfc1123, setup, T0 } from './helpers.js';

// The ten wrong decisions of issue 11, each as the real sequence that produced it.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function started(options: Parameters<typeof setup>[0] = {}) {
  const s = setup(options);
  cleanups.push(() => s.guard.stop());
  await s.guard.start();
  return s;
}

function tracker(name: string, phase: Participant['phase'], log: string[], extra = {}) {
  return {
    name,
    phase,
    prepare: () => {
      log.push(`prepare:${name}`);
    },
    resume: () => {
      log.push(`resume:${name}`);
    },
    ...extra,
  } satisfies Participant;
}

const soon = (ms: number) => rfc1123(T0 + ms);

describe('1. a pause that is not the freeze is not taken for it', () => {
  it('a process pause after NotBefore while the event is still Scheduled does not resume', async () => {
    const s = await started();
    s.source.publish(doc([freeze({ NotBefore: soon(30_000) })]));
    await s.clock.advance(40_000); // past NotBefore, still Scheduled
    expect(s.guard.state).toBe('ready');
    await s.clock.stop(1_500); // a GC pause or a big JSON.parse in a stopped-looking process
    s.source.publish(doc([freeze({ NotBefore: soon(30_000) })])); // still Scheduled after it
    await s.clock.advance(1_000);
    expect(s.guard.state).toBe('ready');
    expect(s.guard.isReady()).toBe(false);
    // The real freeze: Started, then the VM stops.
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('frozen');
    await s.clock.stop(5_000);
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
  });

  it('a 2 s NTP step backwards after NotBefore is never a freeze', async () => {
    const s = await started();
    s.source.publish(doc([freeze({ NotBefore: soon(30_000) })]));
    await s.clock.advance(40_000);
    s.clock.setWall(s.clock.now() - 2_000);
    await s.clock.advance(500);
    expect(s.guard.status().lastPause?.signal).toBe('clock-step');
    expect(s.guard.state).toBe('ready');
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.advance(500);
    expect(s.guard.state).toBe('frozen');
  });

  it('an event still Scheduled long after NotBefore keeps the instance drained (no fail-safe while documents come)', async () => {
    const s = await started({ maxHoldMs: 120_000 });
    s.source.publish(doc([freeze({ NotBefore: soon(60_000) })]));
    for (let i = 0; i < 30; i++) {
      await s.clock.advance(10_000);
      s.source.publish(doc([freeze({ NotBefore: soon(60_000) })]));
    }
    expect(s.clock.now() - (T0 + 60_000)).toBeGreaterThan(200_000);
    expect(s.guard.state).toBe('ready');
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('frozen');
  });

  it('a handled event that later shows Started drains again', async () => {
    const s = await started({ maxHoldMs: 30_000 });
    s.source.publish(doc([freeze({ NotBefore: soon(60_000) })]));
    // The source goes blind: the fail-safe resumes maxHoldMs past NotBefore.
    await s.clock.advance(95_000);
    expect(s.guard.state).toBe('idle');
    expect(s.guard.status().events[0]!.handled).toBe(true);
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('preparing');
  });
});

describe('2. a rescheduled event', () => {
  // Three fake hours are 108 000 guard ticks at the default 100 ms: seconds of CPU, past the
  // 5 s test timeout on a loaded machine. A 500 ms tick (half the pause threshold, the
  // coarsest allowed) decides the same and fires a fifth of the callbacks.
  it('NotBefore moved 3 h later while ready: resumes cancelled at once and prepares again later', {
    timeout: 30_000,
  }, async () => {
    const s = await started({ tickIntervalMs: 500 });
    const resumed: unknown[] = [];
    s.guard.on('resumed', (r) => resumed.push(r));
    s.source.publish(doc([freeze({ NotBefore: soon(30_000) })]));
    await s.clock.advance(6_000);
    expect(s.guard.state).toBe('ready');
    const later = T0 + 3 * 3_600_000;
    s.source.publish(doc([freeze({ NotBefore: rfc1123(later) })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('scheduled');
    expect(s.guard.isReady()).toBe(true);
    expect(resumed).toEqual([{ cancelled: true, pausedMs: 0, failsafe: false }]);
    await s.clock.advance(later - 60_000 - s.clock.now() - 1);
    expect(s.guard.state).toBe('scheduled');
    await s.clock.advance(1);
    expect(s.guard.state).toBe('preparing');
  });
});

describe('3. Canceled and Completed end the event', () => {
  it.each(['Canceled', 'Completed'])('a Freeze in ready that turns %s resumes', async (status) => {
    const s = await started();
    s.source.publish(doc([freeze({ NotBefore: soon(30_000) })]));
    await s.clock.advance(6_000);
    expect(s.guard.state).toBe('ready');
    s.source.publish(doc([freeze({ EventStatus: status, NotBefore: '' })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
    expect(s.guard.status().events[0]!.reason).toMatch(status);
  });

  it('a Reboot shutting down that turns Canceled resumes; /live is healthy throughout', async () => {
    const s = await started();
    s.source.publish(doc([freeze({ EventType: 'Reboot', NotBefore: soon(30_000) })]));
    await s.clock.advance(6_000);
    expect(s.guard.state).toBe('shutting-down');
    expect(s.guard.isLive()).toBe(true);
    s.source.publish(doc([freeze({ EventType: 'Reboot', EventStatus: 'Canceled' })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
    expect(s.guard.isLive()).toBe(true);
  });
});

describe('5. short notice is budgeted', () => {
  it('a 30 s Preempt with default drainDelayMs flushes data before NotBefore and says what it shortened', async () => {
    const s = await started({ drainDelayMs: 15_000 });
    const ends: Record<string, number> = {};
    const slow = (name: string, phase: Participant['phase'], ms: number): Participant => ({
      name,
      phase,
      prepare: async ({ deadline, signal }) => {
        await new Promise<void>((resolve) => {
          const t = s.clock.setTimeout(resolve, Math.min(ms, deadline - s.clock.now()));
          signal.addEventListener('abort', () => {
            s.clock.clearTimeout(t);
            resolve();
          });
        });
        ends[name] = s.clock.now();
      },
    });
    s.guard.use(slow('lb', 'traffic', 0));
    s.guard.use(slow('queue', 'work', 10_000));
    s.guard.use(slow('buffer', 'data', 3_000));
    const notBefore = T0 + 30_000;
    s.source.publish(doc([freeze({ EventType: 'Preempt', NotBefore: rfc1123(notBefore) })]));
    await s.clock.advance(40_000);
    expect(ends.buffer).toBeLessThan(notBefore);
    expect(ends.queue).toBeLessThan(ends.buffer!);
    expect(
      s.guard
        .status()
        .warnings.map((w) => w.message)
        .join('\n'),
    ).toMatch(/short notice.*drainDelayMs 15000/);
  });
});

describe('6. one malformed entry does not blind the guard', () => {
  it('a valid Freeze next to an unreadable entry for another VM is acted on', async () => {
    const s = await started();
    s.source.publish({
      DocumentIncarnation: 7,
      Events: [
        { EventId: 'bad', EventType: 'Freeze', Resources: ['vm-9'], NotBefore: 'soon' },
        freeze({ NotBefore: soon(30_000) }),
      ],
    });
    await s.clock.flush();
    expect(s.guard.state).toBe('preparing');
    expect(s.guard.status().documentProblems).toEqual([
      expect.stringMatching(/Events\[0\].*\(EventId bad\)/),
    ]);
  });
});

describe('7. a new EventId after Started is the same maintenance', () => {
  it('does not drain a second time', async () => {
    const s = await started();
    const log: string[] = [];
    s.guard.use(tracker('lb', 'traffic', log));
    s.source.publish(doc([freeze({ NotBefore: soon(30_000) })]));
    await s.clock.advance(6_000);
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.stop(5_000);
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
    // Microsoft's mock server: a new id on each transition.
    s.source.publish(doc([freeze({ EventId: 'EV-2', EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.advance(60_000);
    expect(s.guard.state).toBe('idle');
    expect(log).toEqual(['prepare:lb', 'resume:lb']);
  });
});

describe('8. DurationInSeconds 0 never hides a shutdown', () => {
  it.each(['Reboot', 'Redeploy', 'Preempt', 'Terminate'])(
    '%s with 0 is prepared for',
    async (type) => {
      const s = await started();
      s.source.publish(
        doc([freeze({ EventType: type, DurationInSeconds: 0, NotBefore: soon(20_000) })]),
      );
      await s.clock.advance(6_000);
      expect(s.guard.state).toBe('shutting-down');
    },
  );

  it('a Freeze with 0 (no impact) is still ignored', async () => {
    const s = await started();
    s.source.publish(doc([freeze({ DurationInSeconds: 0, NotBefore: soon(20_000) })]));
    await s.clock.advance(6_000);
    expect(s.guard.state).toBe('idle');
  });
});

describe('9. approval never expedites an unprepared instance', () => {
  it.each([
    ['throws', { prepare: () => Promise.reject(new Error('broker down')) }],
    ['overruns', { prepare: () => new Promise(() => {}), prepareTimeoutMs: 1_000 }],
  ])("'solo' does not approve when a participant %s", async (_how, extra) => {
    const s = await started({ approve: 'solo', drainDelayMs: 0 });
    s.guard.use({ name: 'queue', phase: 'work', ...extra });
    s.source.publish(doc([freeze({ NotBefore: soon(30_000) })]));
    await s.clock.advance(5_000);
    expect(s.guard.state).toBe('ready');
    expect(s.guard.status().cycle!.prepareFailed).toBe(true);
    expect(s.source.approvals).toEqual([]);
  });
});

describe('approval after a compressed drain', () => {
  it('waits until the instance has been out of rotation for the configured drainDelayMs', async () => {
    const s = await started({ approve: 'solo', drainDelayMs: 5_000 });
    s.source.publish(doc([freeze({ NotBefore: soon(4_000) })]));
    await s.clock.advance(3_000); // the compressed prepare is done (drain cut to 1.8 s)…
    expect(s.guard.state).toBe('ready');
    expect(s.source.approvals).toEqual([]); // …but approving would freeze a VM still in rotation
    await s.clock.advance(2_000);
    expect(s.source.approvals).toEqual(['EV-1']);
  });
});

describe('10. stop() in the middle of a cycle', () => {
  it('resumes what was prepared', async () => {
    const s = await started();
    const log: string[] = [];
    s.guard.use(tracker('lb', 'traffic', log));
    s.guard.use(tracker('queue', 'work', log));
    s.source.publish(doc([freeze({ NotBefore: soon(30_000) })]));
    await s.clock.advance(6_000);
    expect(s.guard.state).toBe('ready');
    await s.guard.stop();
    expect(log).toEqual(['prepare:lb', 'prepare:queue', 'resume:queue', 'resume:lb']);
    expect(s.guard.isReady()).toBe(true);
  });

  it('while preparing aborts the prepare with ERR_STOPPED and still resumes it', async () => {
    const s = await started();
    let reason: unknown;
    const log: string[] = [];
    s.guard.use({
      name: 'slow',
      phase: 'traffic',
      prepare: ({ signal }) =>
        new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => {
            reason = signal.reason;
            resolve();
          }),
        ),
      resume: () => {
        log.push('resume:slow');
      },
    });
    s.source.publish(doc([freeze({ NotBefore: soon(30_000) })]));
    await s.clock.advance(1_000);
    await s.guard.stop();
    expect((reason as FreezeguardError).code).toBe('ERR_STOPPED');
    expect(log).toEqual(['resume:slow']);
  });
});

describe('API consistency', () => {
  it('a cancelled cycle aborts prepare with ERR_CANCELLED', async () => {
    const s = await started();
    let reason: unknown;
    s.guard.use({
      name: 'slow',
      phase: 'traffic',
      prepare: ({ signal }) =>
        new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => {
            reason = signal.reason;
            resolve();
          }),
        ),
    });
    s.source.publish(doc([freeze({ NotBefore: soon(30_000) })]));
    await s.clock.advance(1_000);
    s.source.publish(doc([]));
    await s.clock.flush();
    expect((reason as FreezeguardError).code).toBe('ERR_CANCELLED');
    expect(s.guard.state).toBe('idle');
  });

  it('rejects unknown options, naming the closest one', () => {
    const source = new MemorySource({ resourceName: 'vm-1' });
    expect(() => createGuard({ source, drainDelay: 5 } as never)).toThrow(
      /`drainDelay`.*did you mean drainDelayMs\?/,
    );
    expect(() => createGuard({ source, logger: console.log } as never)).toThrow(/`logger`/);
  });

  it("works with Node's events.once", async () => {
    const s = await started();
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    const resumed = once(s.guard as never, 'resumed');
    await s.clock.advance(6_000);
    await s.clock.stop(3_000);
    await s.clock.flush();
    const [info] = await resumed;
    expect(info).toMatchObject({ cancelled: false });
  });

  it('shutdown() drains like a maintenance event and stays live', async () => {
    const s = await started({ drainDelayMs: 2_000 });
    const log: string[] = [];
    s.guard.use(tracker('lb', 'traffic', log));
    s.guard.use(tracker('queue', 'work', log));
    const done = s.guard.shutdown();
    expect(s.guard.isReady()).toBe(false);
    await s.clock.advance(2_000);
    await done;
    expect(log).toEqual(['prepare:lb', 'prepare:queue']);
    expect(s.guard.state).toBe('shutting-down');
    expect(s.guard.isLive()).toBe(true);
    await s.guard.stop();
    expect(log).toEqual(['prepare:lb', 'prepare:queue']);
  });
});
