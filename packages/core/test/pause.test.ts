import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createPauseDetector, type PauseInfo } from '../src/index.js';
import { FakeClock } from '../src/testing.js';

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

describe('pause detection in a real process (SIGSTOP/SIGCONT)', () => {
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
