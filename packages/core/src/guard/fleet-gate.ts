import type { MaintenanceEvent } from '../event.js';
import type { FleetCoordinator, SlotAnswer } from '../fleet.js';
import type { Logger } from '../logger.js';
import type { Clock, TimerHandle, Timers } from '../time/clock.js';
import { type Active, step } from './cycle-run.js';
import { type FleetActions, slotNotes } from './fleet-policy.js';

/** What the gate needs from its guard. */
export interface GateHooks {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly logger: Logger;
  /** A warning worth keeping in `status()`. */
  warn(facts: object, message: string): void;
  /** `a` is still the guard's cycle, and not resuming: an answer for it applies. */
  current(a: Active): boolean;
  /** Decide again (an answer changed the cycle). */
  evaluate(): void;
}

/** A fleet answer slower than this counts as `unavailable`: Redis must never block a drain. */
export const FLEET_TIMEOUT_MS = 2000;

/**
 * The guard's side of a fleet, the calls {@link decide}'s fleet actions stand for:
 * bounded questions (a slow or dead Redis answers `unavailable`, never hangs a drain)
 * whose answers become steps of the cycle, and the slot given back `drainDelayMs` after
 * the instance serves again, so the next member does not drain before the load balancer
 * has this one back.
 *
 * @example
 * ```ts
 * const gate = new FleetGate(fleet, hooks, 15_000);
 * await gate.askSlot(active);
 * ```
 */
export class FleetGate {
  readonly #fleet: FleetCoordinator;
  readonly #hooks: GateHooks;
  readonly #timers: Timers;
  readonly #releaseDelayMs: number;
  #releaseTimer: TimerHandle | null = null;

  constructor(fleet: FleetCoordinator, hooks: GateHooks, releaseDelayMs: number) {
    this.#fleet = fleet;
    this.#hooks = hooks;
    this.#timers = hooks.timers;
    this.#releaseDelayMs = releaseDelayMs;
  }

  /**
   * Runs the fleet half of a decision for `a`: ask for a slot, drain late (a slot came
   * after a refusal), report prepared events, give the slot back.
   *
   * @example
   * ```ts
   * gate.apply(active, decision.fleet, { drainLate, event: (id) => tracker.get(id)?.event, idle });
   * ```
   */
  apply(
    a: Active,
    f: FleetActions,
    h: {
      drainLate(a: Active): void;
      event(id: string): MaintenanceEvent | undefined;
      /** No cycle is open any more (a delayed release then goes ahead). */
      idle(): boolean;
    },
  ): void {
    if (f.askSlot) void this.askSlot(a);
    if (f.drain) h.drainLate(a);
    for (const id of f.report) {
      const event = h.event(id);
      if (event) this.reportPrepared(a, event);
    }
    if (f.release) this.release(f.release, h.idle);
  }

  /** Asks for a drain slot for `a`; the answer is a step of its cycle. */
  async askSlot(a: Active): Promise<void> {
    const hooks = this.#hooks;
    step(a, { k: 'ask-slot' });
    const answer = await withDeadline(
      this.#fleet.acquireSlot(a.cycle.ids),
      FLEET_TIMEOUT_MS,
      this.#timers,
      'unavailable' as SlotAnswer,
    );
    if (!hooks.current(a)) {
      // Asked for a cycle that is over: a slot granted now is not needed.
      if (answer === 'granted') this.release('now', () => true);
      return;
    }
    const before = a.cycle;
    step(a, { k: 'slot-answer', answer, now: hooks.clock.now() });
    for (const { level, message } of slotNotes(before, a.cycle)) {
      if (level === 'warn') hooks.warn({ eventIds: a.cycle.ids }, message);
      else hooks.logger.info({ eventIds: a.cycle.ids }, message);
    }
    hooks.evaluate();
  }

  /**
   * Reports this member prepared for `event`; when the fleet names it the last of the
   * event's VMs to prepare, that is a step of the cycle (the policy then approves).
   */
  reportPrepared(a: Active, event: MaintenanceEvent): void {
    const id = event.id;
    step(a, { k: 'reported', id });
    void withDeadline(this.#fleet.prepared(event), FLEET_TIMEOUT_MS, this.#timers, false).then(
      (last) => {
        if (!last || !this.#hooks.current(a)) return;
        step(a, { k: 'last-to-prepare', id });
        this.#hooks.evaluate();
      },
    );
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
