import { assertOption } from '../errors.js';
import { type Clock, sleep, systemClock, systemTimers, type Timers, withTimeout } from './clock.js';

/** Options of {@link awaitClockSync}. */
export interface ClockSyncOptions {
  /** Reads the reference clock, epoch ms (e.g. Redis `TIME`). */
  readonly reference: () => Promise<number>;
  /** Local and reference may differ by this much (plus half the round trip). */
  readonly toleranceMs: number;
  /** Give up after this long and report the last skew. */
  readonly timeoutMs: number;
  /** Between attempts. Default 100 ms. */
  readonly intervalMs?: number;
  readonly clock?: Clock;
  readonly timers?: Timers;
  readonly signal?: AbortSignal;
}

/** What {@link awaitClockSync} measured. */
export interface ClockSyncResult {
  /** True when the local clock agreed with the reference within tolerance. */
  readonly inSync: boolean;
  /** Local minus reference, ms, at the last good reading (NaN if none succeeded). */
  readonly skewMs: number;
  /** Round trip of the last good reading, ms. */
  readonly rttMs: number;
  readonly attempts: number;
  /** How long the wait took, ms. */
  readonly waitedMs: number;
  /** The last error of the reference, when it failed. */
  readonly error?: Error;
}

/**
 * Waits until the local wall clock agrees with a reference clock. After a freeze the
 * host steps the guest clock forward some time after resume; work that stamps times
 * (job timestamps, delays, TTLs) should wait for that. Never throws: on timeout it
 * resolves with `inSync: false` and the skew it last measured.
 *
 * @example
 * ```ts
 * const result = await awaitClockSync({
 *   reference: async () => { const [s, us] = await redis.time(); return +s * 1000 + +us / 1000; },
 *   toleranceMs: 500,
 *   timeoutMs: 10_000,
 * });
 * if (!result.inSync) logger.warn({ skewMs: result.skewMs }, 'clock still off');
 * ```
 */
export async function awaitClockSync(options: ClockSyncOptions): Promise<ClockSyncResult> {
  assertOption(
    typeof options.reference === 'function',
    'reference',
    'must be a function',
    options.reference,
  );
  assertOption(options.toleranceMs >= 0, 'toleranceMs', 'must be ≥ 0', options.toleranceMs);
  assertOption(options.timeoutMs >= 0, 'timeoutMs', 'must be ≥ 0', options.timeoutMs);
  const clock = options.clock ?? systemClock;
  const timers = options.timers ?? systemTimers;
  const intervalMs = options.intervalMs ?? 100;
  const started = clock.monotonic();
  let attempts = 0;
  let skewMs = Number.NaN;
  let rttMs = Number.NaN;
  let error: Error | undefined;
  for (;;) {
    attempts++;
    const t0 = clock.now();
    const m0 = clock.monotonic();
    try {
      // A reference that hangs (a Redis client queueing while disconnected) must not
      // outlive the timeout: each reading gets what is left of it.
      const remaining = Math.max(1, options.timeoutMs - (clock.monotonic() - started));
      const reference = await withTimeout(
        timers,
        options.reference(),
        remaining,
        'reference clock',
      );
      const rtt = clock.monotonic() - m0;
      // Compare against the local time half-way through the round trip.
      skewMs = t0 + rtt / 2 - reference;
      rttMs = rtt;
      error = undefined;
      if (Math.abs(skewMs) <= options.toleranceMs + rtt / 2) {
        return { inSync: true, skewMs, rttMs, attempts, waitedMs: clock.monotonic() - started };
      }
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    const elapsed = clock.monotonic() - started;
    if (elapsed >= options.timeoutMs || options.signal?.aborted) {
      return {
        inSync: false,
        skewMs,
        rttMs,
        attempts,
        waitedMs: elapsed,
        ...(error ? { error } : {}),
      };
    }
    try {
      await sleep(timers, Math.min(intervalMs, options.timeoutMs - elapsed), options.signal);
    } catch {
      // aborted: the next loop turn reports
    }
  }
}
