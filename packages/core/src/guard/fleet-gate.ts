import type { ScheduledEvent } from '../document.js';
import type { FleetCoordinator, SlotAnswer } from '../fleet.js';
import type { TimerHandle, Timers } from '../time/clock.js';

/** A fleet answer slower than this counts as `unavailable`: Redis must never block a drain. */
export const FLEET_TIMEOUT_MS = 2000;

/**
 * The guard's side of a fleet, the calls {@link decide}'s fleet actions stand for:
 * bounded questions (a slow or dead Redis answers `unavailable`, never hangs a drain),
 * and the slot given back `drainDelayMs` after the instance serves again, so the next
 * member does not drain before the load balancer has this one back.
 *
 * @example
 * ```ts
 * const gate = new FleetGate(fleet, timers, 15_000);
 * const answer = await gate.acquire(['E1']);
 * ```
 */
export class FleetGate {
  readonly #fleet: FleetCoordinator;
  readonly #timers: Timers;
  readonly #releaseDelayMs: number;
  #releaseTimer: TimerHandle | null = null;

  constructor(fleet: FleetCoordinator, timers: Timers, releaseDelayMs: number) {
    this.#fleet = fleet;
    this.#timers = timers;
    this.#releaseDelayMs = releaseDelayMs;
  }

  acquire(eventIds: readonly string[]): Promise<SlotAnswer> {
    return withDeadline(
      this.#fleet.acquireSlot(eventIds),
      FLEET_TIMEOUT_MS,
      this.#timers,
      'unavailable',
    );
  }

  /** True when this member is the last of the event's VMs to prepare (it approves). */
  prepared(event: ScheduledEvent): Promise<boolean> {
    return withDeadline(this.#fleet.prepared(event), FLEET_TIMEOUT_MS, this.#timers, false);
  }

  /** Gives the slot back now, or after the release delay if `stillIdle()` then. */
  release(when: 'now' | 'after-drain-delay', stillIdle: () => boolean): void {
    if (this.#releaseTimer !== null) this.#timers.clearTimeout(this.#releaseTimer);
    this.#releaseTimer = null;
    if (when === 'now' || this.#releaseDelayMs === 0) {
      void this.#fleet.releaseSlot();
      return;
    }
    this.#releaseTimer = this.#timers.setTimeout(() => {
      this.#releaseTimer = null;
      // A new cycle may hold the slot again by now: only an idle member's is released.
      if (stillIdle()) void this.#fleet.releaseSlot();
    }, this.#releaseDelayMs);
  }

  /** Clears the timers (the guard stops). */
  stop(): void {
    if (this.#releaseTimer !== null) this.#timers.clearTimeout(this.#releaseTimer);
    this.#releaseTimer = null;
  }
}

/** Resolves `promise`, or `fallback` after `ms` or on a rejection. */
function withDeadline<T>(promise: Promise<T>, ms: number, timers: Timers, fallback: T): Promise<T> {
  return new Promise<T>((resolve) => {
    const timer = timers.setTimeout(() => resolve(fallback), ms);
    promise.then(
      (v) => {
        timers.clearTimeout(timer);
        resolve(v);
      },
      () => {
        timers.clearTimeout(timer);
        resolve(fallback);
      },
    );
  });
}
