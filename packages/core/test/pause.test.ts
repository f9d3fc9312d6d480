import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../src/testing.js';
import { createPauseDetector, type PauseInfo } from '../src/time/pause.js';

function detector(clock: FakeClock) {
  const pauses: PauseInfo[] = [];
  const d = createPauseDetector({
    clock,
    timers: clock,
    thresholdMs: 1000,
    tickMs: 100,
    onPause: (p) => pauses.push(p),
  });
  d.start();
  return { d, pauses };
}

describe('pause detection with fake clocks', () => {
  it('a process stop is a monotonic tick gap', async () => {
    const clock = new FakeClock();
    const { pauses } = detector(clock);
    await clock.advance(1_050);
    await clock.stop(5_000);
    expect(pauses).toHaveLength(1);
    expect(pauses[0]!.signal).toBe('tick-gap');
    expect(Math.abs(pauses[0]!.pausedMs - 5_000)).toBeLessThanOrEqual(50);
    expect(pauses[0]!.clockStepMs).toBe(0);
  });

  it('a Hyper-V pause (monotonic frozen, wall stepped) is a clock step', async () => {
    const clock = new FakeClock();
    const { pauses } = detector(clock);
    await clock.advance(1_000);
    await clock.hypervPause(8_000);
    await clock.advance(100);
    expect(pauses).toHaveLength(1);
    expect(pauses[0]).toMatchObject({ signal: 'clock-step', pausedMs: 8_000, clockStepMs: 8_000 });
  });

  it('a backwards wall step counts as a step, not as a pause length', async () => {
    const clock = new FakeClock();
    const { pauses } = detector(clock);
    await clock.advance(1_000);
    clock.setWall(clock.now() - 5_000);
    await clock.advance(100);
    expect(pauses[0]).toMatchObject({ signal: 'clock-step', clockStepMs: -5_000 });
  });

  it('a gap below the threshold is not a pause', async () => {
    const clock = new FakeClock();
    const { pauses } = detector(clock);
    await clock.advance(1_000);
    await clock.stop(300);
    await clock.stop(900);
    await clock.advance(1_000);
    expect(pauses).toEqual([]);
  });

  it('stop() clears its timer', async () => {
    const clock = new FakeClock();
    const { d } = detector(clock);
    expect(clock.pending).toBe(1);
    d.stop();
    expect(clock.pending).toBe(0);
  });
});

// A child process boots, is stopped 2 s and reports; its own waits allow 10 s, so the test
// must too: on a loaded machine (CI runs the QEMU drill alongside) boot alone takes seconds.
describe('pause detection in a real process (SIGSTOP/SIGCONT)', { timeout: 20_000 }, () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  });

  function startChild() {
    const script = fileURLToPath(new URL('./fixtures/bin/pause-child.mjs', import.meta.url));
    child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const messages: Record<string, unknown>[] = [];
    const waiters: (() => void)[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      messages.push(JSON.parse(line));
      for (const w of waiters.splice(0)) w();
    });
    const next = async (key: string, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = messages.findIndex((m) => key in m);
        if (i >= 0) return messages.splice(i, 1)[0]!;
        if (Date.now() > deadline) throw new Error(`child said no ${key} within ${timeoutMs} ms`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    };
    return { child, messages, next };
  }

  it('measures a 2 s SIGSTOP within ±100 ms', async () => {
    const c = startChild();
    await c.next('ready');
    await new Promise((r) => setTimeout(r, 300));
    c.child.kill('SIGSTOP');
    const stoppedAt = performance.now();
    await new Promise((r) => setTimeout(r, 2_000));
    c.child.kill('SIGCONT');
    const actual = performance.now() - stoppedAt;
    const { pause } = (await c.next('pause')) as { pause: PauseInfo };
    expect(pause.signal).toBe('tick-gap');
    expect(Math.abs(pause.pausedMs - actual)).toBeLessThanOrEqual(100);
  });

  it('reports no pause for a 300 ms synchronous block', async () => {
    const c = startChild();
    await c.next('ready');
    c.child.stdin!.write('block 300\n');
    await c.next('blocked');
    await new Promise((r) => setTimeout(r, 500));
    expect(c.messages.filter((m) => 'pause' in m)).toEqual([]);
  });
});

describe('pause detection in a guard', () => {
  it('looks every 4 ticks while idle and every tick once an event is known', async () => {
    const { createGuard } = await import('../src/index.js');
    const { MemorySource } = await import('../src/testing.js');
    const clock = new FakeClock();
    const source = new MemorySource({ resourceName: 'vm-1' });
    const guard = createGuard({
      source,
      clock,
      timers: clock,
      resourceName: 'vm-1',
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    const pauses: PauseInfo[] = [];
    guard.on('pause', (p) => pauses.push(p));
    await guard.start();
    await clock.advance(1_000);
    await clock.stop(3_000);
    expect(pauses[0]!.pausedMs).toBeGreaterThanOrEqual(2_800); // idle: ±200 ms
    source.announce({ EventStatus: 'Scheduled' });
    await clock.advance(1_000);
    expect(guard.state).toBe('scheduled');
    await clock.stop(3_000);
    expect(Math.abs(pauses[1]!.pausedMs - 3_000)).toBeLessThanOrEqual(50); // scheduled: ±50 ms
    await guard.stop();
  });
});

/** A second observer the test drives: it reports whatever silence the test says it had. */
function fakeObserver() {
  const o = {
    running: false,
    silence: 0 as number | null,
    start() {
      o.running = true;
    },
    stop() {
      o.running = false;
    },
    longestSilenceMs: (_windowMs: number) => (o.running ? o.silence : null),
  };
  return o;
}

function observed(clock: FakeClock, options: { active?: boolean } = {}) {
  const pauses: PauseInfo[] = [];
  const observer = fakeObserver();
  const d = createPauseDetector({
    clock,
    timers: clock,
    thresholdMs: 1000,
    tickMs: 100,
    onPause: (p) => pauses.push(p),
    secondObserver: observer,
    ...options,
  });
  d.start();
  return { d, pauses, observer };
}

const dateSample = (clock: FakeClock, realNow: number) => ({
  // An HTTP Date header: the reference truncated to the second.
  referenceMs: Math.floor(realNow / 1000) * 1000,
  resolutionMs: 1000,
  wall: clock.now(),
  monotonic: clock.monotonic(),
  origin: 'imds-date',
});

describe('a second observer tells a process stop from an event-loop stall', () => {
  it('a gap the observer shared is a tick-gap, corroborated', async () => {
    const clock = new FakeClock();
    const { pauses, observer } = observed(clock);
    await clock.advance(1_000);
    observer.silence = 3_000;
    await clock.stop(3_000);
    expect(pauses[0]).toMatchObject({ signal: 'tick-gap', corroborated: true });
  });

  it('a gap the observer did not share is a stall', async () => {
    const clock = new FakeClock();
    const { pauses, observer } = observed(clock);
    await clock.advance(1_000);
    observer.silence = 120;
    await clock.stop(1_500);
    expect(pauses).toHaveLength(1);
    expect(pauses[0]).toMatchObject({ signal: 'stall', corroborated: false });
    expect(Math.abs(pauses[0]!.pausedMs - 1_500)).toBeLessThanOrEqual(50);
    expect(pauses[0]!.evidence).toContain('kept running');
  });

  it('runs the observer only while active and started; without it a gap is unproven', async () => {
    const clock = new FakeClock();
    const { d, pauses, observer } = observed(clock, { active: false });
    expect(observer.running).toBe(false);
    await clock.advance(1_000);
    await clock.stop(2_000);
    expect(pauses[0]).toMatchObject({ signal: 'tick-gap', corroborated: null });
    d.setActive(true);
    expect(observer.running).toBe(true);
    d.stop();
    expect(observer.running).toBe(false);
  });

  it('defaults to no observer on an injected clock (a worker watches only the real clocks)', async () => {
    const clock = new FakeClock();
    const { pauses } = detector(clock);
    await clock.advance(1_000);
    await clock.stop(2_000);
    expect(pauses[0]).toMatchObject({ signal: 'tick-gap', corroborated: null });
  });
});

describe('an external time reference reveals a VM pause before any clock step', () => {
  it('a wall clock left behind by a hypervisor pause is a reference pause, with its lag', async () => {
    const clock = new FakeClock({ now: Date.UTC(2026, 0, 1, 0, 0, 0, 300) });
    const { d, pauses } = observed(clock);
    let real = clock.now();
    for (let i = 0; i < 5; i++) {
      d.reference(dateSample(clock, real));
      await clock.advance(1_070);
      real += 1_070;
    }
    expect(pauses).toEqual([]);
    // The VM stops 5 s: the guest's clocks do not move; real time does.
    real += 5_000;
    await clock.advance(400);
    real += 400;
    d.reference(dateSample(clock, real));
    expect(pauses).toHaveLength(1);
    const p = pauses[0]!;
    expect(p.signal).toBe('reference');
    expect(Math.abs(p.pausedMs - 5_000)).toBeLessThanOrEqual(p.uncertaintyMs);
    expect(p.uncertaintyMs).toBeLessThanOrEqual(1_250); // 1 s resolution + transit allowance
    expect(p.evidence).toContain('imds-date');
    expect(d.lagMs()).toBe(p.pausedMs);
    // The guest's time sync finally steps the clock: the same pause, not a second one.
    clock.setWall(clock.now() + 5_000);
    await clock.advance(200);
    expect(pauses).toHaveLength(1);
    expect(d.lagMs()).toBe(0);
  });

  it('a clock step first (time sync right after the resume) is reported once, by the step', async () => {
    const clock = new FakeClock();
    const { d, pauses } = observed(clock);
    let real = clock.now();
    for (let i = 0; i < 3; i++) {
      d.reference(dateSample(clock, real));
      await clock.advance(1_000);
      real += 1_000;
    }
    real += 5_000;
    await clock.hypervPause(5_000);
    await clock.advance(200);
    real += 200;
    for (let i = 0; i < 3; i++) {
      d.reference(dateSample(clock, real));
      await clock.advance(1_000);
      real += 1_000;
    }
    expect(pauses.map((p) => p.signal)).toEqual(['clock-step']);
    expect(d.lagMs()).toBe(0);
  });

  it('samples that only jitter within the Date header resolution are no pause', async () => {
    const clock = new FakeClock();
    const { d, pauses } = observed(clock);
    let real = clock.now();
    for (let i = 0; i < 50; i++) {
      const transit = (i * 37) % 200;
      d.reference({ ...dateSample(clock, real), wall: clock.now() + transit });
      const step = 200 + ((i * 173) % 900);
      await clock.advance(step);
      real += step;
    }
    expect(pauses).toEqual([]);
    expect(d.lagMs()).toBe(0);
  });
});

describe('the worker observer', () => {
  it('testifies silence only for a window it was running through', async () => {
    const { workerObserver } = await import('../src/time/observer.js');
    const o = workerObserver({ beatMs: 20 });
    expect(o.longestSilenceMs(100)).toBeNull();
    o.start();
    // A worker takes tens of ms to boot, hundreds on a loaded machine: the 400 ms it must
    // have run through start once it beats, not at start().
    for (let i = 0; i < 500 && o.longestSilenceMs(0) === null; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(o.longestSilenceMs(0)).not.toBeNull();
    await new Promise((r) => setTimeout(r, 400));
    const silence = o.longestSilenceMs(300);
    expect(silence).not.toBeNull();
    expect(silence!).toBeLessThan(200);
    o.stop();
    expect(o.longestSilenceMs(100)).toBeNull();
  });
});
