import type { TimeReferenceSample } from '../sources/source.js';
import { type Clock, systemClock, type TimerHandle, type Timers } from './clock.js';
import { type SecondObserver, workerObserver } from './observer.js';
import { createReferenceTracker } from './reference.js';

/**
 * Which signal revealed a pause.
 * - `tick-gap`: the monotonic clock jumped and a second observer the main thread cannot
 *   block was stopped too (a process stop), or no second observer was running to ask
 *   (`corroborated: null`);
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
  /**
   * Best estimate of how long the process did not run, ms. For a `stall`: how long the
   * main thread was blocked.
   */
  readonly pausedMs: number;
  /** ± around `pausedMs`: the resolution of the signal that measured it, ms. */
  readonly uncertaintyMs: number;
  /** Wall clock minus monotonic clock change over the pause, ms (Hyper-V: ≈ the pause). */
  readonly clockStepMs: number;
  /** Wall-clock time the pause was noticed (its end), epoch ms. */
  readonly detectedAt: number;
  /**
   * For a tick gap: whether the second observer (a worker thread) was stopped too. `true`:
   * process-wide (`tick-gap`); `false`: only the main thread (`stall`); `null`: no observer
   * was running to ask (an idle guard), so the gap is reported as `tick-gap` unproven.
   * `null` for the other signals.
   */
  readonly corroborated: boolean | null;
  /** How it was known, in words, for logs: what moved, by how much, against what. */
  readonly evidence: string;
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
  /**
   * A witness the main thread cannot block, asked whether a tick gap stopped it too.
   * Default: a worker thread ({@link workerObserver}) when `clock` is the real
   * `systemClock` (it watches the real clocks), none otherwise; `null` for none.
   */
  readonly secondObserver?: SecondObserver | null;
  /**
   * Whether the second observer runs from `start()`. Default true. An idle guard passes
   * false and calls `setActive(true)` once an event is known: the worker costs ~9 MiB.
   */
  readonly active?: boolean;
  /** Allowance for an external reference's answer in transit, ms. Default 250. */
  readonly referenceTransitMs?: number;
}

/** What {@link createPauseDetector} returns. */
export interface PauseDetector {
  start(): void;
  stop(): void;
  /** Looks every `ms` from now on (the estimate error follows: ±ms/2). */
  setTick(ms: number): void;
  /** Runs the second observer (true) or stops it to save its memory (false). */
  setActive(active: boolean): void;
  /** One reading of an external clock (wire `SourceContext.onTimeReference` here). */
  reference(sample: TimeReferenceSample): void;
  /**
   * How far this process's wall clock is behind real time by what an external reference
   * revealed and no clock step has undone yet, ms (0 normally). Under a VM pause with no
   * time sync, `clock.now() + lagMs()` is the real time.
   */
  lagMs(): number;
}

/**
 * Watches for the process or its VM having been paused, by three signals:
 * - a monotonic tick gap: a process stop (SIGSTOP, a frozen container) makes the next
 *   tick late by the length of the stop. A second observer the main thread cannot block
 *   (a worker thread) tells it from an event-loop stall, which is reported as `stall`;
 * - a wall-clock step against the monotonic clock: under a hypervisor pause the guest's
 *   monotonic clock stands still and the guest's time sync steps the wall clock on resume;
 * - an external reference (`reference(sample)`): a VM pause leaves the guest's wall clock
 *   behind until a time sync steps it; a reference that jumped ahead by the threshold
 *   reveals the pause before that.
 *
 * A gap or step shorter than the threshold is not a pause.
 *
 * @example
 * ```ts
 * const detector = createPauseDetector({ clock: systemClock, timers: systemTimers,
 *   thresholdMs: 1000, tickMs: 100, onPause: (p) => console.log(p.signal, p.pausedMs) });
 * detector.start(); // … detector.stop();
 * ```
 */
export function createPauseDetector(options: PauseDetectorOptions): PauseDetector {
  const { clock, timers, thresholdMs, onPause } = options;
  let tickMs = options.tickMs;
  let handle: TimerHandle | null = null;
  let lastMono = 0;
  let lastWall = 0;
  let active = options.active ?? true;
  const observer =
    options.secondObserver === undefined
      ? clock === systemClock
        ? workerObserver()
        : null
      : options.secondObserver;
  const references = createReferenceTracker({
    thresholdMs,
    ...(options.referenceTransitMs === undefined ? {} : { transitMs: options.referenceTransitMs }),
  });

  const emit = (pause: PauseInfo) => {
    // The listener is the guard's or the user's: it must not stop the detector.
    try {
      onPause(pause);
    } catch {
      // ignored on purpose
    }
  };

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
    if (gapPause === 0 && stepPause === 0) return;
    // A step undoing a fall the reference already reported is the same pause, not a second one.
    const undone = stepPause !== 0 ? references.clockStepped(stepPause) : 0;
    if (gapPause > 0 && gapPause >= Math.abs(stepPause)) {
      const silence = active && observer ? observer.longestSilenceMs(dMono) : null;
      const corroborated = silence === null ? null : silence >= gap / 2;
      const who =
        corroborated === null
          ? 'no second observer running'
          : corroborated
            ? `the worker thread was stopped too (${Math.round(silence!)} ms)`
            : `the worker thread kept running (longest silence ${Math.round(silence!)} ms)`;
      emit({
        signal: corroborated === false ? 'stall' : 'tick-gap',
        pausedMs: Math.round(gapPause),
        uncertaintyMs: Math.round(tickMs / 2),
        clockStepMs: Math.round(step),
        detectedAt: wall,
        corroborated,
        evidence: `the main thread's ${tickMs} ms tick came ${Math.round(dMono)} ms late; ${who}`,
      });
      return;
    }
    const fresh = stepPause > 0 ? stepPause - undone : stepPause;
    if (Math.abs(fresh) < thresholdMs) return;
    emit({
      signal: 'clock-step',
      pausedMs: Math.round(Math.max(gapPause, fresh)),
      uncertaintyMs: Math.round(tickMs / 2),
      clockStepMs: Math.round(step),
      detectedAt: wall,
      corroborated: null,
      evidence: `the wall clock stepped ${Math.round(step)} ms against the monotonic clock${
        undone > 0 ? ` (${Math.round(undone)} ms of it undoing a fall already reported)` : ''
      }`,
    });
  };

  const setObserver = () => {
    if (!observer) return;
    if (handle !== null && active) observer.start();
    else observer.stop();
  };

  return {
    start() {
      if (handle !== null) return;
      lastMono = clock.monotonic();
      lastWall = clock.now();
      handle = timers.setTimeout(tick, tickMs);
      setObserver();
    },
    stop() {
      if (handle !== null) timers.clearTimeout(handle);
      handle = null;
      setObserver();
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
    setActive(next) {
      if (next === active) return;
      active = next;
      setObserver();
    },
    reference(sample) {
      const finding = references.sample(sample);
      if (!finding) return;
      emit({
        signal: 'reference',
        pausedMs: finding.pausedMs,
        uncertaintyMs: finding.uncertaintyMs,
        clockStepMs: 0,
        detectedAt: sample.wall,
        corroborated: null,
        evidence: `${sample.origin} is ${finding.pausedMs} ms (±${finding.uncertaintyMs}, at least ${finding.atLeastMs}) further ahead of the wall clock than before: the wall clock stood still`,
      });
    },
    lagMs() {
      return references.lagMs();
    },
  };
}
