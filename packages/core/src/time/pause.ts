import type { Clock, TimerHandle, Timers } from './clock.js';

/**
 * Which signal revealed a pause.
 * - `tick-gap`: the monotonic clock jumped and a second observer the main thread cannot
 *   block jumped with it (a process stop);
 * - `clock-step`: the wall clock stepped against the monotonic clock (a VM pause undone
 *   by the guest's time sync, or an NTP/admin step);
 * - `reference`: the wall clock fell behind an external reference (IMDS `Date`, Redis
 *   `TIME`) across a gap: a VM pause seen before any time sync;
 * - `stall`: only the main thread stopped (GC, synchronous work): never a freeze;
 * - `event`: inferred from the maintenance document.
 */
export type PauseSignal = 'tick-gap' | 'clock-step' | 'reference' | 'stall' | 'event';

/** One pause the process lived through. */
export interface PauseInfo {
  readonly signal: PauseSignal;
  /** Best estimate of how long the process did not run, ms. */
  readonly pausedMs: number;
  /** Wall clock minus monotonic clock change over the pause, ms (Hyper-V: ≈ the pause). */
  readonly clockStepMs: number;
  /** Wall-clock time the pause was noticed (its end), epoch ms. */
  readonly detectedAt: number;
}

/** Options of {@link createPauseDetector}. */
export interface PauseDetectorOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  /** A gap or step at least this long counts as a pause. */
  readonly thresholdMs: number;
  /** How often to look. The estimate of a tick gap is within ±tickMs/2. */
  readonly tickMs: number;
  readonly onPause: (pause: PauseInfo) => void;
}

/**
 * Watches for the process having been paused, by two clocks at once:
 * - a monotonic tick gap: a process stop (SIGSTOP, a frozen container) makes the next
 *   tick late by the length of the stop;
 * - a wall-clock step against the monotonic clock: under a Hyper-V pause the guest's
 *   monotonic clock stands still and the host steps the wall clock on resume.
 *
 * A synchronous block shorter than the threshold is not a pause.
 *
 * @example
 * ```ts
 * const detector = createPauseDetector({ clock: systemClock, timers: systemTimers,
 *   thresholdMs: 1000, tickMs: 100, onPause: (p) => console.log(p.pausedMs) });
 * detector.start(); // … detector.stop();
 * ```
 */
export function createPauseDetector(options: PauseDetectorOptions): {
  start(): void;
  stop(): void;
  /** Looks every `ms` from now on (the estimate error follows: ±ms/2). */
  setTick(ms: number): void;
} {
  const { clock, timers, thresholdMs, onPause } = options;
  let tickMs = options.tickMs;
  let handle: TimerHandle | null = null;
  let lastMono = 0;
  let lastWall = 0;

  const tick = () => {
    const mono = clock.monotonic();
    const wall = clock.now();
    const dMono = mono - lastMono;
    const step = wall - lastWall - dMono;
    lastMono = mono;
    lastWall = wall;
    handle = timers.setTimeout(tick, tickMs);
    // The stop began somewhere within the tick interval: subtracting half of it halves the error.
    const gap = dMono - tickMs / 2;
    const gapPause = gap >= thresholdMs ? gap : 0;
    const stepPause = Math.abs(step) >= thresholdMs ? step : 0;
    if (gapPause > 0 || stepPause !== 0) {
      onPause({
        signal: gapPause >= Math.abs(stepPause) ? 'tick-gap' : 'clock-step',
        pausedMs: Math.round(Math.max(gapPause, stepPause)),
        clockStepMs: Math.round(step),
        detectedAt: wall,
      });
    }
  };

  return {
    start() {
      if (handle !== null) return;
      lastMono = clock.monotonic();
      lastWall = clock.now();
      handle = timers.setTimeout(tick, tickMs);
    },
    stop() {
      if (handle !== null) timers.clearTimeout(handle);
      handle = null;
    },
    setTick(ms) {
      if (ms === tickMs) return;
      tickMs = ms;
      if (handle === null) return;
      // Restart the interval so no tick is judged against the other period.
      timers.clearTimeout(handle);
      lastMono = clock.monotonic();
      lastWall = clock.now();
      handle = timers.setTimeout(tick, tickMs);
    },
  };
}
