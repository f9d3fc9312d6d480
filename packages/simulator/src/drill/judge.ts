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
