import type { LoadBucket } from './load.js';
import type { DrillDetail, Probe } from './types.js';

/*
 * Judging a drill: pure functions from what was collected (the probes, as a load balancer
 * saw them, and the moments of the freeze) to the verdict and the report's detail.
 */

/** What the probes say about a freeze. */
export interface Judgement {
  readonly passed: boolean;
  readonly verdict: string;
  /** Health was failing continuously from before SIGSTOP. */
  readonly drainedBeforeFreeze: boolean;
  /** When that failing streak began, ms (null if not drained). */
  readonly drainingAt: number | null;
  readonly drainLeadMs: number | null;
  readonly outOfRotationMs: number | null;
  readonly recoveredAfterMs: number | null;
}

/**
 * Judges a drill from its probes: drained (health failing from before SIGSTOP on) and
 * recovered (healthy within `recoverWithinMs` of SIGCONT) passes.
 *
 * @example
 * ```ts
 * const j = judgeDrill(probes, { stopAt: 20_000, contAt: 25_000 }, 5000);
 * j.verdict; // 'PASS: drained 1250 ms before the freeze, healthy 250 ms after it'
 * ```
 */
export function judgeDrill(
  probes: readonly Probe[],
  at: { readonly stopAt: number; readonly contAt: number },
  recoverWithinMs: number,
): Judgement {
  const { stopAt, contAt } = at;
  const before = probes.filter((p) => p.t < stopAt);
  let streakStart: number | null = null;
  for (const p of before) streakStart = p.ok ? null : (streakStart ?? p.t);
  const drained = before.length > 0 && !before.at(-1)!.ok;
  const firstGood = probes.find((p) => p.t >= contAt && p.ok) ?? null;
  const firstBad = drained ? streakStart : (probes.find((p) => p.t >= stopAt && !p.ok)?.t ?? null);
  const recoveredAfterMs = firstGood ? firstGood.t - contAt : null;
  const recovered = recoveredAfterMs !== null && recoveredAfterMs <= recoverWithinMs;
  const passed = drained && recovered;
  const reasons: string[] = [];
  if (!drained)
    reasons.push(
      'health did not fail before the freeze: the load balancer would have kept sending requests to a frozen app',
    );
  if (!recovered) {
    reasons.push(
      recoveredAfterMs === null
        ? 'health never came back after the freeze'
        : `health came back ${recoveredAfterMs} ms after SIGCONT (limit ${recoverWithinMs} ms)`,
    );
  }
  return {
    passed,
    verdict: passed
      ? `PASS: drained ${stopAt - streakStart!} ms before the freeze, healthy ${recoveredAfterMs} ms after it`
      : `FAIL: ${reasons.join('; ')}`,
    drainedBeforeFreeze: drained,
    drainingAt: drained ? streakStart : null,
    drainLeadMs: drained ? stopAt - streakStart! : null,
    outOfRotationMs: firstBad !== null && firstGood ? firstGood.t - firstBad : null,
    recoveredAfterMs,
  };
}

/**
 * When a balancer that takes an instance out after `unhealthyThreshold` failing probes in
 * a row let go of the app: the answer to the last probe of the first such streak that
 * lasted into the freeze (`stopAt`), or null when it still routed to the app then.
 *
 * @example
 * ```ts
 * balancerLetGoAt(probes, 3, stopAt); // 31_250: the third failing answer
 * ```
 */
export function balancerLetGoAt(
  probes: readonly Probe[],
  unhealthyThreshold: number,
  stopAt: number,
): number | null {
  let streak = 0;
  let letGo: number | null = null;
  for (const p of probes) {
    if (p.t >= stopAt) break;
    streak = p.ok ? 0 : streak + 1;
    if (p.ok) letGo = null;
    else if (streak === unhealthyThreshold) letGo = p.doneAt ?? p.t;
  }
  return letGo !== null && letGo <= stopAt ? letGo : null;
}

/**
 * Adds the balancer's view to a judgement: the app must not approve, nor be frozen,
 * while the balancer still routes to it.
 *
 * @example
 * ```ts
 * judgeBalancer(judged, { letGoAt: 31_250, approvedAt: 31_600, stopAt: 31_700 });
 * ```
 */
export function judgeBalancer(
  judged: Judgement,
  at: {
    readonly letGoAt: number | null;
    readonly approvedAt: number | null;
    readonly stopAt: number;
  },
): Judgement {
  const { letGoAt, approvedAt, stopAt } = at;
  const reasons: string[] = [];
  if (approvedAt !== null && (letGoAt === null || approvedAt < letGoAt))
    reasons.push(
      `the app approved while the balancer still routed requests to it (${letGoAt === null ? 'it had not let go by the freeze' : `${letGoAt - approvedAt} ms before it let go`}): the freeze was brought forward onto live traffic`,
    );
  if (letGoAt === null)
    reasons.push('the balancer still routed requests to the app when it was frozen');
  if (reasons.length === 0) {
    return {
      ...judged,
      verdict: judged.passed
        ? `${judged.verdict}; the balancer let go ${stopAt - letGoAt!} ms before the freeze`
        : judged.verdict,
    };
  }
  const failed = judged.passed ? 'FAIL: ' : `${judged.verdict}; `;
  return { ...judged, passed: false, verdict: `${failed}${reasons.join('; ')}` };
}

/**
 * Facts the drill knows at its end, turned into a {@link DrillDetail}.
 *
 * @example
 * ```ts
 * const detail = drillDetail({ phases: phases.stop(), noticeMs, drainingAt, stopAt, contAt,
 *   probes, load: null, measuredPauseMs: await measuredPause(healthUrl) });
 * ```
 */
export function drillDetail(facts: {
  readonly phases: { announcedAt: number | null; readyAt: number | null };
  readonly noticeMs: number;
  readonly drainingAt: number | null;
  readonly stopAt: number;
  readonly contAt: number;
  readonly probes: readonly Probe[];
  readonly load: readonly LoadBucket[] | null;
  readonly measuredPauseMs: number | null;
}): DrillDetail {
  const { phases, probes } = facts;
  return {
    announcedAt: phases.announcedAt,
    notBeforeAt: phases.announcedAt === null ? null : phases.announcedAt + facts.noticeMs,
    drainingAt: facts.drainingAt,
    readyAt: phases.readyAt,
    frozenAt: facts.stopAt,
    resumedAt: facts.contAt,
    healthyAt: probes.find((p) => p.t >= facts.contAt && p.ok)?.t ?? null,
    endAt: probes.at(-1)?.t ?? facts.contAt,
    probes: probes.map((p) => ({ t: p.t, doneAt: p.doneAt ?? p.t, status: p.status })),
    load: facts.load,
    measuredPauseMs: facts.measuredPauseMs,
  };
}
