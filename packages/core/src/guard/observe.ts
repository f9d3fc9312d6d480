import { isoTime, type MaintenanceEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { Observations } from './observations.js';
import type { ApprovalPolicy } from './types.js';

/** What an observing guard logs when it opens a cycle. */
export const WOULD_DRAIN_NOW =
  'freezeguard: observe: would drain now: readiness would fail and participants would prepare';

/** What an observing guard says it would do for one event. */
export interface ObservedPlan {
  readonly eventId: string;
  readonly eventType: string;
  /** NotBefore (epoch ms), or null when the event is due now. */
  readonly notBefore: number | null;
  /** When the guard would start draining (epoch ms). */
  readonly drainAt: number;
  /**
   * The earliest it would approve (epoch ms): the drain plus `drainDelayMs` where nothing
   * confirms sooner; null when it would not approve this event at all.
   */
  readonly approveAt: number | null;
}

/**
 * What an active guard would do with `event`, for the observe mode's log: drain
 * `leadTimeMs` before NotBefore (at once when it is nearer or unknown), and approve per the
 * `approve` policy once out of rotation for `drainDelayMs`. `fleet` is not predicted: it
 * depends on the other members.
 *
 * @example
 * ```ts
 * observePlan(event, now, { leadTimeMs: 60_000, drainDelayMs: 15_000, approve: 'solo', canApprove: true });
 * ```
 */
export function observePlan(
  event: Pick<MaintenanceEvent, 'id' | 'kind' | 'status' | 'resources' | 'notBefore'>,
  now: number,
  o: {
    readonly leadTimeMs: number;
    readonly drainDelayMs: number;
    readonly approve: ApprovalPolicy;
    readonly canApprove: boolean;
  },
): ObservedPlan {
  const nb = event.status === 'Started' ? null : event.notBefore;
  const drainAt = nb === null ? now : Math.max(now, nb - o.leadTimeMs);
  const approves =
    o.canApprove &&
    event.status === 'Scheduled' &&
    (o.approve === 'always' || (o.approve === 'solo' && event.resources.length === 1));
  const approveAt = approves ? drainAt + o.drainDelayMs : null;
  return {
    eventId: event.id,
    eventType: event.kind,
    notBefore: nb,
    drainAt,
    approveAt: approveAt !== null && nb !== null && approveAt >= nb ? null : approveAt,
  };
}

/**
 * The log line of a plan.
 *
 * @example
 * ```ts
 * observeMessage(plan); // 'freezeguard: observe: would drain at 2026-…Z, approve at 2026-…Z'
 * ```
 */
export function observeMessage(plan: ObservedPlan): string {
  const approve = plan.approveAt === null ? 'not approve' : `approve at ${isoTime(plan.approveAt)}`;
  return `freezeguard: observe: would drain at ${isoTime(plan.drainAt)}, ${approve}`;
}

/**
 * Observe mode: logs once per relevant event and NotBefore (`announced` keeps them) what an
 * active guard would do with it, and when.
 *
 * @example
 * ```ts
 * announcePlans(seen, announced, clock.now(), policy, logger);
 * ```
 */
export function announcePlans(
  seen: Pick<Observations, 'tracker' | 'memory'>,
  announced: Map<string, number | null>,
  now: number,
  policy: Parameters<typeof observePlan>[2],
  logger: Logger,
): void {
  for (const t of seen.tracker.list()) {
    if (!t.relevant || !t.active || seen.memory.handled.has(t.id)) continue;
    // Once per event, again when it is rescheduled (not when it turns Started: NotBefore '').
    const nb = t.event.notBefore;
    if (announced.has(t.id) && (nb === null || announced.get(t.id) === nb)) continue;
    announced.set(t.id, nb);
    const plan = observePlan(t.event, now, policy);
    const facts = {
      mode: 'observe',
      eventId: plan.eventId,
      eventType: plan.eventType,
      notBefore: isoTime(plan.notBefore),
      drainAt: isoTime(plan.drainAt),
      approveAt: isoTime(plan.approveAt),
    };
    logger.info(facts, observeMessage(plan));
  }
}
