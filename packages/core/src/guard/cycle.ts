import { isShutdownEvent, type ScheduledEvent } from '../document.js';
import type { SlotAnswer } from '../fleet.js';
import type { Logger } from '../logger.js';
import type { PrepareRun } from './participants.js';
import type { PreparePlan } from './policy.js';
import type { TrackedEvent } from './tracker.js';

/** One prepare → (freeze) → resume cycle, as the guard runs it. */
export interface Cycle {
  readonly ids: string[];
  readonly startedAt: number;
  readonly controller: AbortController;
  readonly run: PrepareRun;
  /** Opened or taken over by `guard.shutdown()`: never resumes. */
  local: boolean;
  prepared: boolean;
  resuming: boolean;
  failsafe: boolean;
  /** False while a fleet member has no drain slot and keeps serving. */
  draining: boolean;
  slot: SlotAnswer | 'none' | 'pending';
  /** When the instance left rotation (null while it serves). */
  drainedAt: number | null;
  shutdownAnnounced: boolean;
  preparing: Promise<void>;
  /** Events reported to the fleet as prepared. */
  readonly fleetReported: Set<string>;
}

/**
 * A new cycle: its abort controller, and the prepare run whose contexts list the cycle's
 * events as they are when each participant is called.
 *
 * @example
 * ```ts
 * const cycle = newCycle({ ids, now, local: false, plan, pendingSlot: false, events, logger });
 * await participants.prepareAll(cycle.run);
 * ```
 */
export function newCycle(o: {
  readonly ids: string[];
  readonly now: number;
  readonly local: boolean;
  readonly plan: PreparePlan;
  /** A fleet must grant a drain slot before the traffic phase. */
  readonly pendingSlot: boolean;
  /** The cycle's events now. */
  readonly events: (cycle: Cycle) => ScheduledEvent[];
  readonly logger: Logger;
}): Cycle {
  const controller = new AbortController();
  const cycle: Cycle = {
    ids: o.ids,
    startedAt: o.now,
    controller,
    local: o.local,
    prepared: false,
    resuming: false,
    failsafe: false,
    draining: true,
    slot: o.pendingSlot ? 'pending' : 'none',
    drainedAt: o.now,
    shutdownAnnounced: false,
    preparing: Promise.resolve(),
    fleetReported: new Set(),
    run: {
      signal: controller.signal,
      plan: o.plan,
      invoked: new Set(),
      failed: false,
      draining: () => cycle.draining,
      context: (_p, deadline, signal) => {
        const events = o.events(cycle);
        return {
          event: events[0]!,
          events,
          deadline,
          signal,
          drainUntil: o.plan.drainUntil,
          shutdown: cycle.local || events.some((e) => isShutdownEvent(e.EventType)),
          draining: cycle.draining,
          logger: o.logger,
        };
      },
    },
  };
  return cycle;
}

/** Unknown-duration events are expected to last this long (Retry-After). */
const UNKNOWN_DURATION_MS = 30_000;

/**
 * When the cycle's events are expected to be over (epoch ms): each from when it started
 * (or is due) plus its announced duration, capped by `maxHoldMs`; never before `now`.
 */
export function expectedEnd(
  events: readonly (TrackedEvent | undefined)[],
  now: number,
  maxHoldMs: number,
): number {
  let latest = now;
  for (const t of events) {
    if (!t?.active) continue;
    const due = t.startedAt ?? t.event.notBefore ?? now;
    const duration = t.event.DurationInSeconds;
    const end =
      Math.max(due, now) + (duration && duration > 0 ? duration * 1000 : UNKNOWN_DURATION_MS);
    latest = Math.max(latest, Math.min(end, due + maxHoldMs));
  }
  return latest;
}

/** The event `guard.shutdown()` drains for: a Terminate that has started. */
export function localShutdownEvent(resourceName: string | undefined): ScheduledEvent {
  return {
    EventId: 'local-shutdown',
    EventType: 'Terminate',
    ResourceType: 'VirtualMachine',
    Resources: resourceName ? [resourceName] : [],
    EventStatus: 'Started',
    NotBefore: '',
    Description: 'guard.shutdown(): the process is shutting down',
    EventSource: 'User',
    notBefore: null,
  };
}
