import type { TimeReferenceSample } from '../sources/source.js';

/** What {@link createReferenceTracker} concluded from a sample that revealed a pause. */
export interface ReferenceFinding {
  /** How far the wall clock fell behind the reference since the previous samples, ms. */
  readonly pausedMs: number;
  /** ± around `pausedMs`: half the width of the before and after intervals. */
  readonly uncertaintyMs: number;
  /** At least this much, for certain (lower bound of the fall), ms. */
  readonly atLeastMs: number;
}

/** Options of {@link createReferenceTracker}. */
export interface ReferenceTrackerOptions {
  /** A fall behind the reference at least this long, for certain, is a pause. */
  readonly thresholdMs: number;
  /**
   * Allowance for the time an answer travels after its reference was read (IMDS answers in
   * milliseconds). Default 250 ms.
   */
  readonly transitMs?: number;
  /** How fast the two clocks may drift apart without a pause, per ms. Default 1e-4 (100 ppm). */
  readonly driftRate?: number;
}

/**
 * Follows the offset between an external clock (an HTTP `Date` header, Redis `TIME`) and
 * this process's wall clock, as an interval that every sample narrows: a sample says the
 * offset `reference − wall` is at least `referenceMs − wall` (the reference was read
 * before the answer arrived) and at most that plus the reference's resolution and
 * transit time. A sample whose lower bound lies above the previous upper bound by the
 * threshold proves the wall clock fell behind: under a VM pause the guest's clocks stand
 * still while the reference's do not.
 *
 * Pure bookkeeping, no timers: the pause detector owns one.
 *
 * @example
 * ```ts
 * const tracker = createReferenceTracker({ thresholdMs: 1000 });
 * const finding = tracker.sample({ referenceMs, resolutionMs: 1000, wall, monotonic, origin: 'imds-date' });
 * if (finding) console.log(`paused ≈ ${finding.pausedMs} ms`);
 * ```
 */
export function createReferenceTracker(options: ReferenceTrackerOptions): {
  sample(sample: TimeReferenceSample): ReferenceFinding | null;
  /**
   * The wall clock was stepped by `stepMs` (seen against the monotonic clock): the offset
   * history no longer applies. Returns how much of a forward step undoes a fall the
   * reference had already reported (so it is not counted as a second pause).
   */
  clockStepped(stepMs: number): number;
  /** How far the wall clock is now behind, by what the reference revealed and no step undid, ms. */
  lagMs(): number;
} {
  const transitMs = options.transitMs ?? 250;
  const driftRate = options.driftRate ?? 1e-4;
  let current: { lo: number; hi: number; monotonic: number } | null = null;
  let lag = 0;
  let lagUncertainty = 0;

  return {
    sample(s) {
      if (!Number.isFinite(s.referenceMs) || !Number.isFinite(s.wall)) return null;
      const lo = s.referenceMs - s.wall;
      const hi = s.referenceMs + Math.max(0, s.resolutionMs) + transitMs - s.wall;
      const before = current;
      current = { lo, hi, monotonic: s.monotonic };
      if (before === null) return null;
      // The clocks may drift apart a little between samples without any pause.
      const drift = Math.max(0, s.monotonic - before.monotonic) * driftRate;
      const prevLo = before.lo - drift;
      const prevHi = before.hi + drift;
      const atLeast = lo - prevHi;
      if (atLeast >= options.thresholdMs) {
        const estimate = Math.max(atLeast, (lo + hi) / 2 - (prevLo + prevHi) / 2);
        const uncertainty = (hi - lo + (prevHi - prevLo)) / 2;
        lag += estimate;
        lagUncertainty = Math.max(lagUncertainty, uncertainty);
        return {
          pausedMs: Math.round(estimate),
          uncertaintyMs: Math.round(uncertainty),
          atLeastMs: Math.round(atLeast),
        };
      }
      const nlo = Math.max(prevLo, lo);
      const nhi = Math.min(prevHi, hi);
      // Disjoint intervals that are not a pause (a small step, a slow answer): start over.
      if (nlo <= nhi) current = { lo: nlo, hi: nhi, monotonic: s.monotonic };
      if (hi < prevLo) lag = Math.max(0, lag - (prevLo - hi));
      return null;
    },
    clockStepped(stepMs) {
      // The step may undo a pause the reference never saw: the old offsets prove nothing now.
      current = null;
      if (!(stepMs > 0) || lag === 0) return 0;
      const undone = Math.min(lag, stepMs);
      lag = lag - stepMs > lagUncertainty ? lag - stepMs : 0;
      if (lag === 0) lagUncertainty = 0;
      return undone;
    },
    lagMs() {
      return Math.round(lag);
    },
  };
}
