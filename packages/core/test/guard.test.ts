import { afterEach, describe, expect, it } from 'vitest';
import {
  createGuard,
  FreezeguardError,
  type Participant,
  type PrepareContext,
  type ResumeContext,
} from '../src/index.js';
import { FakeClock, MemorySource } from '../src/testing.js';
import { doc, freeze, recordingLogger, rfc1123, setup, T0 } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function started(s: ReturnType<typeof setup>) {
  cleanups.push(() => s.guard.stop());
  return s.guard.start().then(() => s);
}

function recorder(
  name: string,
  phase: Participant['phase'],
  log: string[],
  extra: Partial<Participant> = {},
) {
  const seen: { prepare?: PrepareContext; resume?: ResumeContext } = {};
  const p: Participant = {
    name,
    phase,
    prepare: (ctx) => {
      seen.prepare = ctx;
      log.push(`prepare:${name}`);
    },
    resume: (ctx) => {
      seen.resume = ctx;
      log.push(`resume:${name}`);
    },
    ...extra,
  };
  return { p, seen };
}

describe('options', () => {
  it.each([
    [{ leadTimeMs: -1 }, 'leadTimeMs'],
    [{ prepareTimeoutMs: 0 }, 'prepareTimeoutMs'],
    [{ approve: 'sometimes' }, 'approve'],
    [{ resumeWhen: 'later' }, 'resumeWhen'],
    [{ eventTypes: ['Freeze', 'Nap'] }, 'eventTypes'],
    [{ eventTypes: [] }, 'eventTypes'],
    [{ pauseThresholdMs: 100, tickIntervalMs: 100 }, 'tickIntervalMs'],
    [{ resourceName: '  ' }, 'resourceName'],
  ])('rejects %o naming the option', (options, name) => {
    expect(() => createGuard({ source: new MemorySource(), ...(options as object) })).toThrow(
      expect.objectContaining({
        code: 'ERR_BAD_OPTION',
        message: expect.stringContaining(`\`${name}\``),
      }),
    );
  });

  it('rejects a malformed participant naming the field', () => {
    const guard = createGuard({ source: new MemorySource() });
    expect(() => guard.use({ name: '', phase: 'work' })).toThrow(/participant\.name/);
    expect(() => guard.use({ name: 'x', phase: 'later' as never })).toThrow(/participant\.phase/);
  });
});

describe('relevance', () => {
  it('ignores events for other VMs and says why', async () => {
    const s = await started(setup());
    s.source.publish(doc([freeze({ Resources: ['vm-2'] })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
    expect(s.guard.status().events[0]).toMatchObject({
      relevant: false,
      reason: expect.stringContaining('not for this VM'),
    });
  });

  it('keeps unknown types, reports them, does not act', async () => {
    const s = await started(setup());
    s.source.publish(
      doc([freeze({ EventType: 'Hibernate', EventStatus: 'Started', NotBefore: '' })]),
    );
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
    expect(s.guard.status().events[0]!.reason).toMatch(/unknown EventType/);
  });

  it('filters by eventTypes', async () => {
    const s = await started(setup({ eventTypes: ['Freeze'] }));
    s.source.publish(doc([freeze({ EventType: 'Reboot', EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
  });

  it('without a resource name acts on nothing, never approves, and says why', async () => {
    const clock = new FakeClock({ now: T0 });
    const source = new MemorySource({ nameError: new Error('IMDS down') });
    const guard = createGuard({
      source,
      clock,
      timers: clock,
      logger: recordingLogger(),
      approve: 'always',
    });
    cleanups.push(() => guard.stop());
    const prev = process.env.FREEZEGUARD_RESOURCE_NAME;
    delete process.env.FREEZEGUARD_RESOURCE_NAME;
    await guard.start();
    await clock.flush();
    source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await clock.advance(10_000);
    expect(guard.state).toBe('idle');
    expect(source.approvals).toEqual([]);
    expect(guard.status().resourceNameError).toMatch(/IMDS down/);
    expect(guard.status().events[0]!.reason).toMatch(/resource name unknown/);
    // the name arrives later: the event is acted on
    source.setResourceName('vm-1');
    await clock.advance(60_000);
    expect(guard.resourceName).toBe('vm-1');
    expect(guard.isReady()).toBe(false);
    if (prev !== undefined) process.env.FREEZEGUARD_RESOURCE_NAME = prev;
  });

  it('reads FREEZEGUARD_RESOURCE_NAME when no option is given', () => {
    const prev = process.env.FREEZEGUARD_RESOURCE_NAME;
    process.env.FREEZEGUARD_RESOURCE_NAME = 'from-env_3';
    try {
      expect(createGuard({ source: new MemorySource() }).resourceName).toBe('from-env_3');
    } finally {
      if (prev === undefined) delete process.env.FREEZEGUARD_RESOURCE_NAME;
      else process.env.FREEZEGUARD_RESOURCE_NAME = prev;
    }
  });
});

describe('lifecycle of a Freeze', () => {
  it('scheduled → preparing at NotBefore − leadTime → ready; phases in order; resume in reverse', async () => {
    const s = await started(setup());
    const log: string[] = [];
    const traffic = recorder('lb', 'traffic', log);
    const work = recorder('queue', 'work', log);
    const data = recorder('buffer', 'data', log);
    for (const r of [data, work, traffic]) s.guard.use(r.p);
    s.source.publish(doc([freeze()]));
    await s.clock.flush();
    expect(s.guard.state).toBe('scheduled');
    expect(s.guard.isReady()).toBe(true);
    await s.clock.advance(14 * 60_000 - 1);
    expect(s.guard.state).toBe('scheduled');
    await s.clock.advance(1);
    expect(s.guard.state).toBe('preparing');
    expect(s.guard.isReady()).toBe(false);
    expect(log).toEqual(['prepare:lb']);
    // work waits for drainDelayMs after preparing began
    await s.clock.advance(4_999);
    expect(log).toEqual(['prepare:lb']);
    await s.clock.advance(1);
    expect(log).toEqual(['prepare:lb', 'prepare:queue', 'prepare:buffer']);
    expect(s.guard.state).toBe('ready');
    expect(work.seen.prepare!.drainUntil).toBe(T0 + 14 * 60_000 + 5_000);
    expect(work.seen.prepare!.event.id).toBe('EV-1');
    // The event starts and the VM freezes (SIGSTOP-like pause of 5 s)
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('frozen');
    await s.clock.stop(5_000);
    await s.clock.flush();
    expect(log.slice(3)).toEqual(['resume:buffer', 'resume:queue', 'resume:lb']);
    expect(s.guard.state).toBe('idle');
    expect(data.seen.resume).toMatchObject({ cancelled: false });
    expect(data.seen.resume!.pausedMs).toBeGreaterThanOrEqual(4_900);
    // Event still listed as Started until Azure removes it: no second cycle
    await s.clock.advance(3_000);
    expect(s.guard.state).toBe('idle');
    s.source.publish(doc([]));
    await s.clock.flush();
    expect(s.guard.status().events).toEqual([]);
    expect(s.states).toEqual(['scheduled', 'preparing', 'ready', 'frozen', 'resuming', 'idle']);
  });

  it('prepares at once when NotBefore − leadTime has passed, or the event already Started', async () => {
    const s = await started(setup());
    s.source.publish(doc([freeze({ NotBefore: rfc1123(T0 + 10_000) })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('preparing');

    const t = await started(setup());
    t.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await t.clock.flush();
    expect(t.guard.state).toBe('preparing');
  });

  it("resumeWhen 'removed' ignores pauses and waits for the event to leave", async () => {
    const s = await started(setup({ resumeWhen: 'removed' }));
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.advance(6_000);
    await s.clock.stop(5_000);
    await s.clock.advance(1_000);
    expect(s.guard.state).toBe('frozen');
    s.source.publish(doc([]));
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
  });

  it('after-pause resumes once the freeze is observed, without waiting out DurationInSeconds', async () => {
    const s = await started(setup());
    s.source.publish(
      doc([freeze({ EventStatus: 'Started', NotBefore: '', DurationInSeconds: 30 })]),
    );
    await s.clock.advance(6_000);
    expect(s.guard.state).toBe('frozen');
    await s.clock.stop(2_000); // the freeze: shorter than the announced 30 s, and over
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
  });

  it('a pause before the event became due does not end the freeze', async () => {
    const s = await started(setup());
    s.source.publish(doc([freeze({ NotBefore: rfc1123(T0 + 30_000) })]));
    await s.clock.advance(6_000);
    await s.clock.stop(3_000); // a long GC, say — before NotBefore
    await s.clock.flush();
    expect(s.guard.state).toBe('ready');
  });

  it('a freeze before NotBefore that the guard only learns of afterwards (someone else approved) still ends it', async () => {
    const s = await started(setup());
    s.source.publish(doc([freeze({ NotBefore: rfc1123(T0 + 40_000) })]));
    await s.clock.advance(6_000);
    expect(s.guard.state).toBe('ready');
    // Another VM of the availability set approves: Azure starts the event and freezes us
    // before our next poll, so the pause comes first…
    await s.clock.stop(5_000);
    await s.clock.flush();
    expect(s.guard.state).toBe('ready');
    // …and the document says Started only after it.
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.advance(200); // the estimate of when the pause began is within a tick
    expect(s.guard.state).toBe('idle');
  });

  it('maxHoldMs resumes anyway, warns in the log and in status()', async () => {
    const s = await started(setup({ maxHoldMs: 20_000 }));
    const resumed: unknown[] = [];
    s.guard.on('resumed', (r) => resumed.push(r));
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.advance(19_000);
    expect(s.guard.state).toBe('frozen');
    await s.clock.advance(1_100);
    expect(s.guard.state).toBe('idle');
    expect(resumed).toEqual([{ cancelled: false, pausedMs: 0, failsafe: true }]);
    expect(s.guard.status().warnings.at(-1)!.message).toMatch(/maxHoldMs/);
    expect(s.logger.lines.some((l) => l.level === 'warn' && /maxHoldMs/.test(l.msg))).toBe(true);
  });

  it('an event removed before it started resumes with cancelled: true', async () => {
    const s = await started(setup());
    const log: string[] = [];
    const r = recorder('lb', 'traffic', log);
    s.guard.use(r.p);
    s.source.publish(doc([freeze({ NotBefore: rfc1123(T0 + 30_000) })]));
    await s.clock.advance(10_000);
    expect(s.guard.state).toBe('ready');
    s.source.publish(doc([]));
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
    expect(r.seen.resume).toMatchObject({ cancelled: true, pausedMs: 0 });
  });

  it('cancellation while preparing aborts the prepare signal, then resumes', async () => {
    const s = await started(setup());
    let aborted = false;
    let resumed = false;
    s.guard.use({
      name: 'slow',
      phase: 'traffic',
      prepare: ({ signal }) =>
        new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve();
          });
        }),
      resume: () => {
        resumed = true;
      },
    });
    s.source.publish(doc([freeze({ NotBefore: rfc1123(T0 + 30_000) })]));
    await s.clock.advance(1_000);
    expect(s.guard.state).toBe('preparing');
    s.source.publish(doc([]));
    await s.clock.flush();
    expect(aborted).toBe(true);
    expect(resumed).toBe(true);
    expect(s.guard.state).toBe('idle');
  });

  it('overlapping events keep the guard drained until the last one is done', async () => {
    const s = await started(setup({ resumeWhen: 'removed' }));
    const a = freeze({ EventId: 'A', EventStatus: 'Started', NotBefore: '' });
    const b = freeze({ EventId: 'B', NotBefore: rfc1123(T0 + 20_000) });
    s.source.publish(doc([a]));
    await s.clock.advance(6_000);
    s.source.publish(doc([a, b]));
    await s.clock.advance(1_000);
    expect(s.guard.status().cycle!.eventIds).toEqual(['A', 'B']);
    s.source.publish(doc([b]));
    await s.clock.flush();
    expect(s.guard.isReady()).toBe(false);
    s.source.publish(doc([]));
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
  });

  it('a throwing participant and an overrunning one are recorded and skipped', async () => {
    const s = await started(setup({ prepareTimeoutMs: 2_000, drainDelayMs: 0 }));
    const log: string[] = [];
    s.guard.use({
      name: 'thrower',
      phase: 'work',
      prepare: () => {
        throw new Error('boom');
      },
    });
    let sawAbort = false;
    s.guard.use({
      name: 'sleeper',
      phase: 'work',
      prepare: ({ signal }) =>
        new Promise(() =>
          signal.addEventListener('abort', () => {
            sawAbort = true;
          }),
        ),
    });
    s.guard.use(recorder('after', 'data', log).p);
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.flush();
    expect(log).toEqual([]);
    await s.clock.advance(2_000);
    expect(log).toEqual(['prepare:after']);
    expect(sawAbort).toBe(true);
    const byName = Object.fromEntries(
      s.guard.status().participants.map((p) => [p.name, p.prepare?.outcome]),
    );
    expect(byName).toEqual({ thrower: 'error', sleeper: 'timeout', after: 'ok' });
    expect(s.guard.status().participants[0]!.prepare!.error!.message).toBe('boom');
    expect(JSON.parse(JSON.stringify(s.guard.status())).participants).toHaveLength(3);
  });

  it('a participant registered mid-cycle is prepared at once and resumed with the rest', async () => {
    const s = await started(setup({ resumeWhen: 'removed', drainDelayMs: 0 }));
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.flush();
    const log: string[] = [];
    s.guard.use(recorder('late', 'work', log).p);
    await s.clock.flush();
    expect(log).toEqual(['prepare:late']);
    s.source.publish(doc([]));
    await s.clock.flush();
    expect(log).toEqual(['prepare:late', 'resume:late']);
  });

  it('after stop() nothing runs and no timer is left', async () => {
    const s = setup();
    await s.guard.start();
    const log: string[] = [];
    s.guard.use(recorder('x', 'traffic', log).p);
    s.source.publish(doc([freeze()]));
    await s.clock.flush();
    await s.guard.stop();
    expect(s.clock.pending).toBe(0);
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.advance(20 * 60_000);
    expect(log).toEqual([]);
    await expect(s.guard.start()).rejects.toBeInstanceOf(FreezeguardError);
  });

  it('status() is JSON-serialisable and says what happened', async () => {
    const s = await started(setup());
    s.source.publish(doc([freeze(), freeze({ EventId: 'other', Resources: ['vm-9'] })]));
    await s.clock.flush();
    const status = JSON.parse(JSON.stringify(s.guard.status()));
    expect(status).toMatchObject({
      state: 'scheduled',
      ready: true,
      resourceName: 'vm-1',
      source: { kind: 'memory', documentIncarnation: expect.any(Number), consecutiveFailures: 0 },
    });
    expect(status.events.map((e: { relevant: boolean }) => e.relevant)).toEqual([true, false]);
  });

  it('a throwing listener does not break the guard', async () => {
    const s = await started(setup());
    s.guard.on('state', () => {
      throw new Error('listener bug');
    });
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('preparing');
  });
});

describe('shutdown events', () => {
  it.each(['Reboot', 'Redeploy', 'Preempt', 'Terminate'])(
    '%s ends in shutting-down and emits shutdown',
    async (type) => {
      const s = await started(setup({ drainDelayMs: 0 }));
      const shutdowns: string[] = [];
      s.guard.on('shutdown', (ev) => shutdowns.push(ev.kind));
      let ctx: PrepareContext | undefined;
      s.guard.use({
        name: 'w',
        phase: 'work',
        prepare: (c) => {
          ctx = c;
        },
      });
      s.source.publish(
        doc([
          freeze({ EventType: type, EventStatus: 'Started', NotBefore: '', DurationInSeconds: -1 }),
        ]),
      );
      await s.clock.advance(200_000);
      await s.clock.stop(5_000);
      expect(s.guard.state).toBe('shutting-down');
      // Liveness never fails for maintenance: an orchestrator would restart the process
      // in the middle of its drain.
      expect(s.guard.isLive()).toBe(true);
      expect(shutdowns).toEqual([type]);
      expect(ctx!.shutdown).toBe(true);
    },
  );

  it('a cancelled reboot resumes', async () => {
    const s = await started(setup({ drainDelayMs: 0 }));
    s.source.publish(doc([freeze({ EventType: 'Reboot', NotBefore: rfc1123(T0 + 30_000) })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('shutting-down');
    s.source.publish(doc([]));
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
  });
});

describe('approval', () => {
  const scheduledSoon = (over: Record<string, unknown> = {}) =>
    freeze({ NotBefore: rfc1123(T0 + 30_000), ...over });

  it("'never' posts nothing", async () => {
    const s = await started(setup({ drainDelayMs: 0 }));
    s.source.publish(doc([scheduledSoon()]));
    await s.clock.advance(1_000);
    expect(s.guard.state).toBe('ready');
    expect(s.source.approvals).toEqual([]);
  });

  it("'solo' approves once after all participants prepared, only when alone", async () => {
    const s = await started(setup({ approve: 'solo', drainDelayMs: 1_000 }));
    const approved: string[] = [];
    s.guard.on('approved', (a) => approved.push(a.eventId));
    let prepared = false;
    s.guard.use({
      name: 'w',
      phase: 'work',
      prepare: () => {
        prepared = true;
      },
    });
    s.source.publish(
      doc([scheduledSoon(), scheduledSoon({ EventId: 'shared', Resources: ['vm-1', 'vm-2'] })]),
    );
    await s.clock.advance(500);
    expect(s.source.approvals).toEqual([]);
    await s.clock.advance(600);
    expect(prepared).toBe(true);
    expect(s.source.approvals).toEqual(['EV-1']);
    // republishing the same events never approves twice
    s.source.publish(
      doc([scheduledSoon(), scheduledSoon({ EventId: 'shared', Resources: ['vm-1', 'vm-2'] })]),
    );
    await s.clock.advance(5_000);
    expect(s.source.approvals).toEqual(['EV-1']);
    expect(approved).toEqual(['EV-1']);
  });

  it("'always' approves shared events naming this VM, never others'", async () => {
    const s = await started(setup({ approve: 'always', drainDelayMs: 0 }));
    s.source.publish(
      doc([
        scheduledSoon({ Resources: ['vm-1', 'vm-2'] }),
        scheduledSoon({ EventId: 'theirs', Resources: ['vm-2'] }),
      ]),
    );
    await s.clock.advance(1_000);
    expect(s.source.approvals).toEqual(['EV-1']);
  });

  it('an approval makes the event due: a pause right after ends the freeze', async () => {
    const s = await started(setup({ approve: 'solo', drainDelayMs: 0, leadTimeMs: 1_000_000 }));
    s.source.publish(doc([freeze()])); // NotBefore in 15 min
    await s.clock.advance(1_000);
    expect(s.source.approvals).toEqual(['EV-1']);
    await s.clock.stop(5_000);
    await s.clock.flush();
    // A pause alone is not the freeze while the document still says Scheduled…
    expect(s.guard.state).toBe('ready');
    // …the first document after it says Started: that pause was the freeze.
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
  });
});
