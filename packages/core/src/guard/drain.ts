import { type BalancerProfile, balancerTimings, tooShortNotices } from '../drain/balancer.js';
import type { Logger } from '../logger.js';
import type { MaintenanceSource } from '../sources/source.js';
import type { ApprovalPolicy, DrainState, GuardMode, Participant } from './types.js';

const ORDER: readonly DrainState[] = ['pending', 'unprobed', 'confirmed'];

/**
 * The least settled drain state of the `traffic` participants that can tell (`none`
 * when none can): what the policy's approval waits for. A participant whose
 * `drainState()` throws, or that has not seen the drain begin yet (`serving`), is not
 * done with it either.
 *
 * @example
 * ```ts
 * leastDrainState(participants.list()); // 'pending' until every HTTP adapter confirmed
 * ```
 */
export function leastDrainState(participants: readonly Participant[]): DrainState | 'none' {
  let least: DrainState | 'none' = 'none';
  for (const p of participants) {
    if (p.phase !== 'traffic' || typeof p.drainState !== 'function') continue;
    let state: DrainState;
    try {
      state = p.drainState();
    } catch {
      state = 'pending';
    }
    if (state === 'serving') state = 'pending';
    if (least === 'none' || ORDER.indexOf(state) < ORDER.indexOf(least)) least = state;
  }
  return least;
}

/**
 * Whether every participant that runs readiness checks last saw them pass (a participant
 * whose `healthy()` throws is not): what the fleet hears as this member serving.
 *
 * @example
 * ```ts
 * allHealthy(participants.list()); // false while the HTTP adapter's checks fail
 * ```
 */
export function allHealthy(participants: readonly Participant[]): boolean {
  return participants.every((p) => {
    if (typeof p.healthy !== 'function') return true;
    try {
      return p.healthy() !== false;
    } catch {
      return false;
    }
  });
}

/**
 * What the guard says when it starts: that an `approve` policy does not apply to a source
 * without an approval call, what it watches, and a warning when the balancer named by
 * `lb` takes longer to let go than the shortest notice the platform gives (Azure Preempt,
 * GCE preemption: 30 s).
 *
 * @example
 * ```ts
 * logStartNotes(logger, { approve: 'solo', balancer, balancerGiven: true }, source, 'vm-1');
 * ```
 */
export function logStartNotes(
  logger: Logger,
  o: {
    readonly approve: ApprovalPolicy;
    readonly mode?: GuardMode;
    readonly balancer: BalancerProfile;
    readonly balancerGiven: boolean;
  },
  source: Pick<MaintenanceSource, 'kind' | 'supportsApproval' | 'watching'>,
  resourceName: string | undefined,
): void {
  if (o.approve !== 'never' && source.supportsApproval === false) {
    logger.info(
      { source: source.kind, approve: o.approve },
      `freezeguard: approve '${o.approve}' does not apply to ${source.kind}, which has no approval call`,
    );
  }
  // A source that reads nothing (no cloud detected) already said so.
  if (source.watching !== false) {
    logger.info(
      { source: source.kind, resourceName: resourceName ?? null },
      'freezeguard: watching for maintenance events',
    );
  }
  if (o.mode === 'observe')
    logger.info(
      { mode: 'observe', approve: o.approve },
      'freezeguard: observe mode: deciding and logging only; nothing is drained, paused or approved',
    );
  if (!o.balancerGiven) return;
  const notices = tooShortNotices(o.balancer, source.kind);
  if (notices.length === 0) return;
  const { detectionMs } = balancerTimings(o.balancer);
  logger.warn(
    { ...o.balancer, detectionMs, notices },
    `freezeguard: the balancer needs up to ${detectionMs / 1000} s to take this instance out, longer than the notice of ${notices.join(', ')}: those cannot be drained in time`,
  );
}
