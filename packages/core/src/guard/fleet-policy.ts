import { type Cycle, isDraining } from './cycle.js';
import type { TrackedEvent } from './tracker.js';

/**
 * The fleet's rules, as pure functions of the cycle (see {@link decide}, which returns
 * their actions with the rest of its decision):
 * - a fleet member asks for a drain slot before its traffic phase, and keeps serving
 *   without one (it still pauses work and flushes data); it asks again every second,
 *   or as soon as the fleet changes;
 * - a slot granted after a refusal takes the instance out of rotation then: the traffic
 *   phase runs late;
 * - the slot is given back once the cycle resumed: at once when the guard stops, else
 *   after the drain delay (the load balancer has this instance back before the next
 *   member drains);
 * - under `approve: 'fleet'` a member reports each event it could approve as prepared,
 *   and again whenever the fleet changes (the member it waited for may have left); the
 *   fleet names the last of the event's VMs to prepare, and that member approves;
 * - with the fleet unavailable (Redis down or slow) the member acts solo: it drains
 *   without a slot and approves only an event that lists its VM alone.
 */

/** What the guard asks of its fleet coordinator now. */
export interface FleetActions {
  /** Ask for a drain slot. */
  readonly askSlot: boolean;
  /** Run the traffic phase now: a slot came after a refusal. */
  readonly drain: boolean;
  /** Report this member prepared for these events (`approve: 'fleet'`). */
  readonly report: readonly string[];
  /** Give the slot back: `now`, or `after-drain-delay` if the member is then still idle. */
  readonly release: 'now' | 'after-drain-delay' | null;
}

/** Nothing for the fleet. */
export const NO_FLEET_ACTIONS: FleetActions = {
  askSlot: false,
  drain: false,
  report: [],
  release: null,
};

/**
 * The slot actions for an open cycle at `now` (a cycle that opens asks at once), and when
 * the next question is due as `wakeAt`.
 *
 * @example
 * ```ts
 * slotActions(cycle, now); // { askSlot: true, … } once a refused member's retry is due
 * ```
 */
export function slotActions(
  cycle: Cycle,
  now: number,
): { readonly askSlot: boolean; readonly drain: boolean; readonly wakeAt: number } {
  if (cycle.resuming || cycle.asking)
    return { askSlot: false, drain: false, wakeAt: Number.POSITIVE_INFINITY };
  const retry = cycle.slot === 'denied' ? (cycle.askAgainAt ?? Number.POSITIVE_INFINITY) : null;
  const askSlot = cycle.slot === 'pending' || (retry !== null && retry <= now);
  return {
    askSlot,
    drain: cycle.trafficDue && isDraining(cycle),
    wakeAt: retry !== null && !askSlot ? retry : Number.POSITIVE_INFINITY,
  };
}

/**
 * The slot is given back once the cycle's resume finished, if it holds one.
 *
 * @example
 * ```ts
 * slotRelease(cycle); // 'after-drain-delay' once a granted cycle resumed
 * ```
 */
export function slotRelease(cycle: Cycle): FleetActions['release'] {
  if (!cycle.resumed || cycle.slot !== 'granted') return null;
  return cycle.stopping ? 'now' : 'after-drain-delay';
}

/**
 * Under `approve: 'fleet'`, what becomes of the events the lifecycle would approve
 * (`candidates`): approved solo while the fleet is unavailable, else reported; approved
 * once the fleet named this member the last to prepare.
 *
 * @example
 * ```ts
 * const { approve, report } = fleetApprovals(cycle, candidates, approvalsSent);
 * ```
 */
export function fleetApprovals(
  cycle: Cycle,
  candidates: readonly TrackedEvent[],
  approvalsSent: ReadonlySet<string>,
): { readonly approve: readonly string[]; readonly report: readonly string[] } {
  const approve: string[] = [];
  const report: string[] = [];
  for (const t of candidates) {
    // Fleet unreachable: solo behaviour, approve only an event that lists this VM alone.
    if (cycle.slot === 'unavailable') {
      if (t.event.resources.length === 1) approve.push(t.id);
      continue;
    }
    if (!isDraining(cycle) || cycle.reported.includes(t.id)) continue;
    report.push(t.id);
  }
  for (const id of cycle.lastToPrepare)
    if (!approvalsSent.has(id) && !approve.includes(id)) approve.push(id);
  return { approve, report };
}

/**
 * What changed with a slot answer, worth a line in the log (and `status().warnings`).
 *
 * @example
 * ```ts
 * for (const { level, message } of slotNotes(before, after)) logger[level]({}, message);
 * ```
 */
export function slotNotes(
  before: Cycle,
  after: Cycle,
): readonly { readonly level: 'info' | 'warn'; readonly message: string }[] {
  const notes: { level: 'info' | 'warn'; message: string }[] = [];
  if (after.slot === 'unavailable' && before.slot !== 'unavailable')
    notes.push({
      level: 'warn',
      message: 'freezeguard: fleet unavailable; draining without coordination (solo behaviour)',
    });
  if (after.slot === 'denied' && before.slot !== 'denied')
    notes.push({
      level: 'warn',
      message:
        'freezeguard: no drain slot (the fleet is at minInRotation); keeps serving, still pauses work and flushes data',
    });
  if (before.slot === 'denied' && isDraining(after))
    notes.push({ level: 'info', message: 'freezeguard: drain slot granted; draining now' });
  return notes;
}
