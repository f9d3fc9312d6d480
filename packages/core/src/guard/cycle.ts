import type { MaintenanceEvent } from '../event.js';
import type { SlotAnswer } from '../fleet.js';
import type { TrackedEvent } from './tracker.js';

/** How often a member without a drain slot asks again. */
export const SLOT_RETRY_MS = 1000;

/**
 * Where a cycle stands with the fleet's drain slots: `none` without a fleet (or for
 * `guard.shutdown()`), `pending` until the first answer, then the last answer.
 */
export type SlotState = 'none' | 'pending' | SlotAnswer;

/**
 * One prepare → (freeze) → resume cycle, as a value. It is never modified: the guard
 * replaces it with {@link reduceCycle}'s result, and {@link decide} reads it. What the
 * guard runs for a cycle (abort controller, participant calls, promises) lives beside it.
 */
export interface Cycle {
  /** Tells one cycle from the next: an answer that comes back for another cycle is stale. */
  readonly serial: number;
  readonly ids: readonly string[];
  readonly startedAt: number;
  /** Opened or taken over by `guard.shutdown()`: never resumes. */
  readonly local: boolean;
  /** Every prepare phase finished. */
  readonly prepared: boolean;
  /** A participant failed or overran its prepare. */
  readonly prepareFailed: boolean;
  readonly resuming: boolean;
  /** Resumed because the guard stops: a slot is given back at once. */
  readonly stopping: boolean;
  /** Every resume call finished. */
  readonly resumed: boolean;
  readonly failsafe: boolean;
  readonly slot: SlotState;
  /** A drain-slot question is out. */
  readonly asking: boolean;
  /** Without a slot: when to ask again (null while asking or when no retry is due). */
  readonly askAgainAt: number | null;
  /** When the instance left rotation; null while it serves (a fleet member without a slot). */
  readonly drainedAt: number | null;
  /** A slot came after a refusal: the traffic phase has yet to run. */
  readonly trafficDue: boolean;
  /** `shutdown` (and its `cycle`) emitted. */
  readonly shutdownAnnounced: boolean;
  /** Events reported to the fleet as prepared. */
  readonly reported: readonly string[];
  /** Events the fleet named this member the last of their VMs to prepare: it approves them. */
  readonly lastToPrepare: readonly string[];
}

/** What happens to a cycle: each one a step of {@link reduceCycle}. */
export type CycleAction =
  | { readonly k: 'join'; readonly ids: readonly string[] }
  | { readonly k: 'leave'; readonly id: string }
  /** `guard.shutdown()` takes the cycle over: it holds until the process exits. */
  | { readonly k: 'take-over'; readonly id: string }
  | { readonly k: 'prepare-failed' }
  | { readonly k: 'prepared' }
  | { readonly k: 'ask-slot' }
  | { readonly k: 'slot-answer'; readonly answer: SlotAnswer; readonly now: number }
  /** The fleet changed (a slot freed, a member left): a member without a slot asks at once. */
  | { readonly k: 'fleet-changed'; readonly now: number }
  | { readonly k: 'traffic-started' }
  | { readonly k: 'reported'; readonly id: string }
  | { readonly k: 'last-to-prepare'; readonly id: string }
  | { readonly k: 'shutdown-announced' }
  | { readonly k: 'resume'; readonly failsafe: boolean; readonly stopping: boolean }
  | { readonly k: 'resumed' };

/**
 * A new cycle. A fleet member asks for a drain slot before its traffic phase; until the
 * answer it counts as draining, as it would without a fleet.
 *
 * @example
 * ```ts
 * const cycle = openCycle({ serial: 1, ids: ['E1'], now, local: false, fleet: true });
 * ```
 */
export function openCycle(o: {
  readonly serial: number;
  readonly ids: readonly string[];
  readonly now: number;
  readonly local: boolean;
  readonly fleet: boolean;
}): Cycle {
  return {
    serial: o.serial,
    ids: [...o.ids],
    startedAt: o.now,
    local: o.local,
    prepared: false,
    prepareFailed: false,
    resuming: false,
    stopping: false,
    resumed: false,
    failsafe: false,
    slot: o.fleet && !o.local ? 'pending' : 'none',
    asking: false,
    askAgainAt: null,
    drainedAt: o.now,
    trafficDue: false,
    shutdownAnnounced: false,
    reported: [],
    lastToPrepare: [],
  };
}

/**
 * The cycle after `action`. Pure.
 *
 * @example
 * ```ts
 * cycle = reduceCycle(cycle, { k: 'slot-answer', answer: 'denied', now });
 * cycle.drainedAt; // null: it keeps serving
 * ```
 */
export function reduceCycle(c: Cycle, a: CycleAction): Cycle {
  switch (a.k) {
    case 'join':
      return { ...c, ids: [...c.ids, ...a.ids] };
    case 'leave':
      return { ...c, ids: c.ids.filter((id) => id !== a.id) };
    case 'take-over':
      return { ...c, local: true, ids: [...c.ids, a.id] };
    case 'prepare-failed':
      return { ...c, prepareFailed: true };
    case 'prepared':
      return { ...c, prepared: true };
    case 'ask-slot':
      return { ...c, asking: true, askAgainAt: null };
    case 'slot-answer': {
      if (a.answer === 'denied') {
        // Keeps serving; asks again in a while, or at once if the fleet changed meanwhile.
        const again = c.askAgainAt ?? a.now + SLOT_RETRY_MS;
        return { ...c, slot: 'denied', asking: false, askAgainAt: again, drainedAt: null };
      }
      const late = c.slot === 'denied';
      return {
        ...c,
        slot: a.answer,
        asking: false,
        askAgainAt: null,
        drainedAt: late ? a.now : c.drainedAt,
        trafficDue: c.trafficDue || late,
      };
    }
    case 'fleet-changed': {
      // The member a report waited for may have left, or a grant may have come: what was
      // reported and not approved yet is reported again (the fleet answers true once).
      const reported = c.reported.filter((id) => c.lastToPrepare.includes(id));
      return { ...c, reported, askAgainAt: c.slot === 'denied' ? a.now : c.askAgainAt };
    }
    case 'traffic-started':
      return { ...c, trafficDue: false };
    case 'reported':
      return { ...c, reported: [...c.reported, a.id] };
    case 'last-to-prepare':
      return { ...c, lastToPrepare: [...c.lastToPrepare, a.id] };
    case 'shutdown-announced':
      return { ...c, shutdownAnnounced: true };
    case 'resume':
      return { ...c, resuming: true, failsafe: c.failsafe || a.failsafe, stopping: a.stopping };
    case 'resumed':
      return { ...c, resumed: true };
  }
}

/**
 * False while a fleet member has no drain slot and keeps serving.
 *
 * @example
 * ```ts
 * guard.isReady(); // !isDraining(cycle) while a cycle is open
 * ```
 */
export function isDraining(c: Cycle): boolean {
  return c.slot !== 'denied';
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
    const duration = t.event.durationSeconds;
    const end =
      Math.max(due, now) + (duration && duration > 0 ? duration * 1000 : UNKNOWN_DURATION_MS);
    latest = Math.max(latest, Math.min(end, due + maxHoldMs));
  }
  return latest;
}

/**
 * When the cycle is expected to be over (`guard.expectedResumeAt()`): now once it resumes.
 *
 * @example
 * ```ts
 * const at = expectedResumeAt(cycle, tracker, clock.now(), { maxHoldMs: 120_000 });
 * ```
 */
export function expectedResumeAt(
  cycle: Cycle,
  tracker: { get(id: string): TrackedEvent | undefined },
  now: number,
  o: { readonly maxHoldMs: number },
): number {
  if (cycle.resuming) return now;
  return expectedEnd(
    cycle.ids.map((id) => tracker.get(id)),
    now,
    o.maxHoldMs,
  );
}

/** The event `guard.shutdown()` drains for: a Terminate that has started. */
export function localShutdownEvent(resourceName: string | undefined): MaintenanceEvent {
  return {
    id: 'local-shutdown',
    kind: 'Terminate',
    resourceType: 'VirtualMachine',
    resources: resourceName ? [resourceName] : [],
    status: 'Started',
    description: 'guard.shutdown(): the process is shutting down',
    origin: 'User',
    notBefore: null,
  };
}
