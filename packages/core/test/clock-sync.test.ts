import { describe, expect, it } from 'vitest';
import { awaitClockSync } from '../src/index.js';
import { FakeClock } from '../src/testing.js';

describe('awaitClockSync', () => {
  it('resolves at once when the clocks agree', async () => {
    const clock = new FakeClock();
    const result = await awaitClockSync({
      reference: async () => clock.now() + 20,
      toleranceMs: 500,
      timeoutMs: 5_000,
      clock,
      timers: clock,
    });
    expect(result).toMatchObject({ inSync: true, attempts: 1 });
    expect(result.skewMs).toBe(-20);
  });

  it('waits while the local clock lags, until the host steps it', async () => {
    const clock = new FakeClock();
    const reference = clock.now() + 30_000; // Redis is 30 s ahead: we were frozen
    let offset = 30_000;
    const pending = awaitClockSync({
      reference: async () => clock.now() + offset,
      toleranceMs: 500,
      timeoutMs: 10_000,
      clock,
      timers: clock,
    });
    await clock.advance(2_000);
    offset = 0; // the host stepped our clock
    clock.setWall(clock.now());
    await clock.advance(200);
    const result = await pending;
    expect(reference).toBeGreaterThan(0);
    expect(result.inSync).toBe(true);
    expect(result.attempts).toBeGreaterThan(10);
    expect(result.waitedMs).toBeGreaterThanOrEqual(2_000);
  });

  it('reports the skew on timeout instead of throwing', async () => {
    const clock = new FakeClock();
    const pending = awaitClockSync({
      reference: async () => clock.now() - 4_000,
      toleranceMs: 500,
      timeoutMs: 1_000,
      clock,
      timers: clock,
    });
    await clock.advance(1_500);
    const result = await pending;
    expect(result).toMatchObject({ inSync: false, skewMs: 4_000 });
  });

  it('survives a failing reference and reports its error', async () => {
    const clock = new FakeClock();
    const pending = awaitClockSync({
      reference: async () => {
        throw new Error('ECONNREFUSED');
      },
      toleranceMs: 500,
      timeoutMs: 500,
      clock,
      timers: clock,
    });
    await clock.advance(1_000);
    const result = await pending;
    expect(result.inSync).toBe(false);
    expect(result.error?.message).toBe('ECONNREFUSED');
    expect(Number.isNaN(result.skewMs)).toBe(true);
  });

  it('names the option it rejects', async () => {
    await expect(
      awaitClockSync({ reference: async () => 0, toleranceMs: -1, timeoutMs: 1 }),
    ).rejects.toThrow(/`toleranceMs`/);
  });
});

describe('awaitClockSync with a hanging reference', () => {
  it('still honours timeoutMs', async () => {
    const clock = new FakeClock();
    const pending = awaitClockSync({
      reference: () => new Promise<number>(() => {}),
      toleranceMs: 500,
      timeoutMs: 1_000,
      clock,
      timers: clock,
    });
    await clock.advance(1_100);
    const result = await pending;
    expect(result.inSync).toBe(false);
    expect(result.error?.message).toMatch(/did not answer/);
  });
});
