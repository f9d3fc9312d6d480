// The dry run (mode 'observe', FREEZEGUARD_MODE=observe) and the kill switch (mode
// 'disabled', FREEZEGUARD_DISABLED=1): decisions run, nothing is done.
import { afterEach, describe, expect, it } from 'vitest';
import { envGuardOptions, resolveGuardOptions } from '../src/guard/options.js';
import { createGuard, type Participant } from '../src/index.js';
import { MemorySource } from '../src/testing.js';
import { doc, freeze, rfc1123, setup, T0 } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function started(s: ReturnType<typeof setup>) {
  cleanups.push(() => s.guard.stop());
  return s.guard.start().then(() => s);
}

function spy(name: string, phase: Participant['phase'], calls: string[]): Participant {
  return {
    name,
    phase,
    prepare: () => void calls.push(`prepare:${name}`),
    resume: () => void calls.push(`resume:${name}`),
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

describe("mode 'observe'", () => {
  it('logs when it would drain and approve, stays ready, calls nobody, approves nothing', async () => {
    const s = await started(setup({ mode: 'observe', approve: 'solo' }));
    const calls: string[] = [];
    for (const [n, p] of [
      ['lb', 'traffic'],
      ['queue', 'work'],
      ['buffer', 'data'],
    ] as const)
      s.guard.use(spy(n, p, calls));
    const ready: boolean[] = [];
    s.guard.on('state', () => ready.push(s.guard.isReady()));
    const cycles: string[] = [];
    s.guard.on('cycle', (c) => cycles.push(c.outcome));

    s.source.publish(doc([freeze()])); // NotBefore T0 + 15 min, lead 60 s, drain delay 5 s
    await s.clock.flush();
    const plan = s.logger.lines.find((l) =>
      l.msg.startsWith('freezeguard: observe: would drain at'),
    );
    expect(plan?.msg).toBe(
      `freezeguard: observe: would drain at ${iso(T0 + 14 * 60_000)}, approve at ${iso(T0 + 14 * 60_000 + 5_000)}`,
    );
    expect(plan?.obj).toMatchObject({ eventId: 'EV-1', notBefore: iso(T0 + 15 * 60_000) });
    expect(s.guard.status().mode).toBe('observe');

    await s.clock.advance(14 * 60_000);
    // Nothing to prepare in a dry run: 'ready' at once, readiness untouched.
    expect(s.guard.state).toBe('ready');
    expect(s.logger.lines.map((l) => l.msg)).not.toContain(
      'freezeguard: observe: would approve the event now (StartRequests not sent)',
    );
    expect(s.logger.lines.map((l) => l.msg)).toContain(
      'freezeguard: observe: would drain now: readiness would fail and participants would prepare',
    );
    await s.clock.advance(5_000);
    expect(s.logger.lines.map((l) => l.msg)).toContain(
      'freezeguard: observe: would approve the event now (StartRequests not sent)',
    );
    expect(s.source.approvals).toEqual([]);
    expect(s.guard.status().events[0]?.approved).toBe(false);

    // The platform starts the event at NotBefore and freezes the VM: observed as usual.
    await s.clock.advance(55_000);
    s.source.publish(doc([freeze({ EventStatus: 'Started', NotBefore: '' })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('frozen');
    await s.clock.stop(5_000);
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');

    expect(s.states).toEqual(['scheduled', 'preparing', 'ready', 'frozen', 'resuming', 'idle']);
    // State lines are ASCII and say the mode.
    const line = s.logger.lines.find((l) => l.msg === 'freezeguard: idle -> scheduled');
    expect(line?.obj).toMatchObject({ state: 'scheduled', previous: 'idle', mode: 'observe' });
    expect(ready.every(Boolean)).toBe(true);
    expect(calls).toEqual([]);
    expect(cycles).toEqual(['resumed']);
    // Each would-approve once: no repeated lines while the policy re-evaluates.
    const approveLines = s.logger.lines.filter((l) => l.msg.includes('would approve'));
    expect(approveLines).toHaveLength(1);
  });

  it('shutdown() does not drain; a participant joining mid-cycle is not called', async () => {
    const s = await started(setup({ mode: 'observe' }));
    s.source.publish(doc([freeze({ NotBefore: rfc1123(T0 + 10_000) })]));
    await s.clock.flush();
    const calls: string[] = [];
    s.guard.use(spy('late', 'work', calls));
    await s.guard.shutdown();
    await s.clock.advance(10_000);
    expect(calls).toEqual([]);
    expect(s.guard.isReady()).toBe(true);
    expect(s.logger.lines.map((l) => l.msg)).toContain(
      'freezeguard: observe: would drain for shutdown now',
    );
  });

  it('says it would not approve under approve never', async () => {
    const s = await started(setup({ mode: 'observe' }));
    s.source.publish(doc([freeze()]));
    await s.clock.flush();
    expect(s.logger.lines.map((l) => l.msg)).toContain(
      `freezeguard: observe: would drain at ${iso(T0 + 14 * 60_000)}, not approve`,
    );
    // Seen again unchanged: no new line; rescheduled an hour later: announced again.
    s.source.publish(doc([freeze()]));
    await s.clock.flush();
    s.source.publish(doc([freeze({ NotBefore: rfc1123(T0 + 75 * 60_000) })]));
    await s.clock.flush();
    const plans = s.logger.lines.filter((l) => l.msg.includes('would drain at')).map((l) => l.msg);
    expect(plans).toEqual([
      `freezeguard: observe: would drain at ${iso(T0 + 14 * 60_000)}, not approve`,
      `freezeguard: observe: would drain at ${iso(T0 + 74 * 60_000)}, not approve`,
    ]);
  });
});

describe("mode 'disabled'", () => {
  it('never polls, never drains, says so once', async () => {
    const s = setup({ mode: 'disabled' });
    await s.guard.start();
    cleanups.push(() => s.guard.stop());
    expect(s.source.started).toBe(false);
    await s.guard.shutdown();
    expect(s.guard.isReady()).toBe(true);
    expect(s.guard.status().mode).toBe('disabled');
    expect(s.logger.lines.map((l) => l.msg)).toEqual([
      'freezeguard: disabled: not watching for maintenance, never draining',
    ]);
  });
});

describe('the environment table', () => {
  it('reads the mode, the kill switch and the log settings; code wins', () => {
    expect(envGuardOptions({ FREEZEGUARD_MODE: 'observe' })).toEqual({ mode: 'observe' });
    expect(envGuardOptions({ FREEZEGUARD_DISABLED: 'true', FREEZEGUARD_MODE: 'observe' })).toEqual({
      mode: 'disabled',
    });
    expect(envGuardOptions({ FREEZEGUARD_DISABLED: '0' })).toEqual({});
    expect(resolveGuardOptions({ mode: 'active' }, { FREEZEGUARD_DISABLED: '1' }).mode).toBe(
      'active',
    );
    expect(resolveGuardOptions({}, { FREEZEGUARD_MODE: 'observe' }).mode).toBe('observe');
  });

  it.each([
    ['FREEZEGUARD_MODE', 'dry-run'],
    ['FREEZEGUARD_DISABLED', 'maybe'],
    ['FREEZEGUARD_LOG_LEVEL', 'verbose'],
    ['FREEZEGUARD_LOG_FORMAT', 'yaml'],
  ])('an invalid %s=%s fails at construction naming the variable', (name, value) => {
    expect(() => resolveGuardOptions({}, { [name]: value })).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_OPTION', message: expect.stringContaining(name) }),
    );
  });

  it('createGuard() picks FREEZEGUARD_MODE up from process.env', () => {
    const prev = process.env.FREEZEGUARD_MODE;
    process.env.FREEZEGUARD_MODE = 'observe';
    try {
      const guard = createGuard({ source: new MemorySource(), resourceName: 'vm-1' });
      expect(guard.status().mode).toBe('observe');
    } finally {
      if (prev === undefined) delete process.env.FREEZEGUARD_MODE;
      else process.env.FREEZEGUARD_MODE = prev;
    }
  });
});
