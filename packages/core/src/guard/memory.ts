import { ALIAS_WINDOW_MS, type HandledMark, type ObservedPause } from './policy.js';
import type { TrackedEvent } from './tracker.js';
import type { CycleOutcome } from './types.js';

/** Pauses kept for the policy (it only needs the recent ones). */
const PAUSE_HISTORY = 32;

/**
 * What the guard remembers between decisions besides the tracked events: the events
 * whose cycle resumed while they were still listed (handled), the maintenances that ran
 * recently (to recognise a new EventId of one), and the last pauses.
 *
 * @example
 * ```ts
 * const memory = new LifecycleMemory();
 * memory.recordPause({ signal: 'tick-gap', detectedAt, pausedMs: 5000, clockStepMs: 0, seq });
 * memory.cycleOver(events, 'resumed', now, seq);
 * ```
 */
export class LifecycleMemory {
  readonly handled = new Map<string, HandledMark>();
  readonly recent: HandledMark[] = [];
  readonly pauses: ObservedPause[] = [];

  recordPause(pause: ObservedPause): void {
    this.pauses.push(pause);
    if (this.pauses.length > PAUSE_HISTORY) this.pauses.shift();
  }

  /** The pauses detected since `from` (wall clock), added up. */
  pausedSince(from: number): { pausedMs: number; clockStepMs: number } {
    let pausedMs = 0;
    let clockStepMs = 0;
    for (const p of this.pauses) {
      if (p.detectedAt < from) continue;
      pausedMs += Math.max(0, p.pausedMs);
      clockStepMs += p.clockStepMs;
    }
    return { pausedMs, clockStepMs };
  }

  /** Forgets maintenances that ran longer ago than a new EventId of them can appear. */
  forget(now: number): void {
    while (this.recent.length > 0 && now - this.recent[0]!.at > ALIAS_WINDOW_MS)
      this.recent.shift();
  }

  /** An event ended: it is no longer handled (if it comes back, it is new). */
  ended(id: string): void {
    this.handled.delete(id);
  }

  /**
   * A cycle resumed: events still listed are handled; those that ran (or the whole
   * cycle, when it resumed after the maintenance) are remembered for their new ids.
   */
  cycleOver(
    events: readonly TrackedEvent[],
    outcome: Exclude<CycleOutcome, 'shutdown'>,
    now: number,
    seq: number,
  ): void {
    for (const t of events) {
      const mark: HandledMark = {
        id: t.id,
        eventType: t.event.kind,
        resources: [...t.event.resources],
        status: t.event.status,
        ran: t.startedAt !== null,
        at: now,
        seq,
      };
      if (t.active) this.handled.set(t.id, mark);
      if (t.startedAt !== null || outcome === 'resumed') this.recent.push({ ...mark, ran: true });
    }
  }
}
