import type { Phase } from './types.js';

/** When each prepare phase must be over, given the notice left. */
export interface PreparePlan {
  /** Until then the load balancer may still send requests; `work` starts no earlier. */
  readonly drainUntil: number;
  /** Latest end of each phase (epoch ms); a participant's own timeout is capped by it. */
  readonly phaseDeadline: Readonly<Record<Phase, number>>;
  /** What was shortened to fit before NotBefore, for the log. */
  readonly compressed: readonly string[];
}

/** The least time the whole prepare gets, even when NotBefore has passed. */
export const MIN_PREPARE_BUDGET_MS = 3000;

/**
 * Budgets the notice left before NotBefore across the phases, so that a short notice
 * (Preempt: 30 s) still lets every phase have its turn before the VM goes: the drain
 * delay gets at most half of it, `traffic` ends by 60 %, `work` by 80 %, `data` by the
 * end, which is NotBefore less a margin (at least 3 s in all, even when NotBefore has
 * passed). With a long notice, or no NotBefore, nothing is shortened.
 *
 * @example
 * ```ts
 * planPrepare(now, now + 30_000, { drainDelayMs: 15_000, prepareTimeoutMs: 30_000 });
 * // drainUntil: now + 13.5 s; data done by now + 27 s
 * ```
 */
export function planPrepare(
  now: number,
  notBefore: number | null,
  o: { readonly drainDelayMs: number; readonly prepareTimeoutMs: number },
): PreparePlan {
  // Without a NotBefore (a Started event) the time left is unknown: the configured
  // values apply, as they would with a long notice.
  if (notBefore === null) {
    return {
      drainUntil: now + o.drainDelayMs,
      phaseDeadline: {
        traffic: Number.POSITIVE_INFINITY,
        work: Number.POSITIVE_INFINITY,
        data: Number.POSITIVE_INFINITY,
      },
      compressed: [],
    };
  }
  const left = notBefore - now;
  const margin = Math.min(2000, Math.max(0, left) * 0.1);
  const budget = Math.max(left - margin, MIN_PREPARE_BUDGET_MS);
  const compressed: string[] = [];
  const drain = Math.min(o.drainDelayMs, Math.floor(budget * 0.5));
  if (drain < o.drainDelayMs) compressed.push(`drainDelayMs ${o.drainDelayMs} -> ${drain} ms`);
  const caps: Record<Phase, number> = {
    traffic: Math.floor(budget * 0.6),
    work: Math.floor(budget * 0.8),
    data: Math.floor(budget),
  };
  // A phase is only shortened when its cap leaves less than the configured timeout
  // counted from the earliest it can start.
  const earliest: Record<Phase, number> = { traffic: 0, work: drain, data: drain };
  for (const phase of ['traffic', 'work', 'data'] as const) {
    if (caps[phase] - earliest[phase] < o.prepareTimeoutMs)
      compressed.push(`${phase} phase must end within ${caps[phase]} ms`);
  }
  return {
    drainUntil: now + drain,
    phaseDeadline: {
      traffic: now + Math.max(caps.traffic, drain),
      work: now + caps.work,
      data: now + caps.data,
    },
    compressed,
  };
}
