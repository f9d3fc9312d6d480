/**
 * Time as the guard sees it. Two clocks on purpose: a Hyper-V pause stops the guest's
 * monotonic clock while the host steps the wall clock on resume, so only comparing both
 * reveals it.
 *
 * @example
 * ```ts
 * const clock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };
 * ```
 */
export interface Clock {
  /** Wall clock, epoch milliseconds (`Date.now()`). */
  now(): number;
  /** Monotonic milliseconds from an arbitrary origin (`performance.now()`). */
  monotonic(): number;
}

/** An opaque timer handle: whatever `setTimeout` returned. */
export type TimerHandle = unknown;

/**
 * Scheduling, injectable so tests drive time. Implementations must `unref()` what they
 * create: a guard must never keep a process alive on its own.
 *
 * @example
 * ```ts
 * const timers: Timers = systemTimers;
 * const handle = timers.setTimeout(() => poll(), 1000);
 * timers.clearTimeout(handle);
 * ```
 */
export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The real clocks.
 *
 * @example
 * ```ts
 * createGuard({ clock: systemClock });
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};

/**
 * Real timers, unref()ed.
 *
 * @example
 * ```ts
 * createGuard({ timers: systemTimers });
 * ```
 */
export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, Math.max(0, ms));
    handle.unref();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/**
 * Resolves after `ms` on the given timers; rejects with the signal's reason when aborted.
 *
 * @example
 * ```ts
 * await sleep(systemTimers, 250, controller.signal);
 * ```
 */
export function sleep(timers: Timers, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      timers.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Races a promise against a timeout on the given timers; rejects with an error naming
 * `what` when time runs out. The timer is always cleared.
 *
 * @example
 * ```ts
 * const pong = await withTimeout(systemTimers, redis.ping(), 2000, 'PING');
 * ```
 */
export function withTimeout<T>(
  timers: Timers,
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let handle: TimerHandle | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      handle = timers.setTimeout(
        () => reject(new Error(`${what} did not answer within ${ms} ms`)),
        ms,
      );
    }),
  ]).finally(() => {
    if (handle !== undefined) timers.clearTimeout(handle);
  });
}
