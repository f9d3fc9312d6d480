import { isoTime, type MaintenanceDocument } from '../event.js';
import type { Logger } from '../logger.js';
import type { Clock } from '../time/clock.js';
import type { PauseInfo } from '../time/pause.js';
import { LifecycleMemory } from './memory.js';
import type { HandledMark } from './policy.js';
import { EventTracker, type RelevanceRules } from './tracker.js';

/** Warnings kept for `status()`. */
const KEPT_WARNINGS = 20;

/**
 * What the guard has observed, as {@link decide} reads it: the tracked events, the
 * lifecycle memory (handled events, recent maintenances, pauses), the last document and
 * pause, and the warnings kept for the operator. Logs what it takes in.
 *
 * @example
 * ```ts
 * const seen = new Observations(logger, clock);
 * if (seen.document(doc, clock.now(), rules, new Set(cycle.ids))) emit('event', doc);
 * ```
 */
export class Observations {
  readonly tracker = new EventTracker();
  readonly memory = new LifecycleMemory();
  readonly warnings: { at: string; message: string }[] = [];
  lastPause: PauseInfo | null = null;
  lastDocumentAt: number | null = null;
  documentProblems: readonly string[] = [];
  readonly #logger: Logger;
  readonly #clock: Clock;

  constructor(logger: Logger, clock: Clock) {
    this.#logger = logger;
    this.#clock = clock;
  }

  /**
   * New EventIds of the maintenance that just ran (renewed at Started): remembered as
   * handled, so the guard does not drain for them again.
   */
  markHandled(marks: readonly HandledMark[]): void {
    for (const mark of marks) {
      this.memory.handled.set(mark.id, mark);
      this.#logger.info(
        { eventId: mark.id },
        'freezeguard: a new EventId for the maintenance that just ran; not draining again',
      );
    }
  }

  warn(facts: object, message: string): void {
    this.#logger.warn(facts, message);
    this.#keep(message);
  }

  /** Logged at info, and kept in `status().warnings` for the operator. */
  note(facts: object, message: string): void {
    this.#logger.info(facts, message);
    this.#keep(message);
  }

  #keep(message: string): void {
    this.warnings.push({ at: new Date(this.#clock.now()).toISOString(), message });
    if (this.warnings.length > KEPT_WARNINGS) this.warnings.shift();
  }

  /**
   * Takes in a document read at `now`; forgets ended events no cycle holds. True when its
   * incarnation changed (the guard emits `event`).
   */
  document(
    document: MaintenanceDocument,
    now: number,
    rules: RelevanceRules,
    inCycle: ReadonlySet<string>,
  ): boolean {
    this.lastDocumentAt = now;
    const problems = document.problems ?? [];
    if (problems.join('\n') !== this.documentProblems.join('\n') && problems.length > 0) {
      this.warn(
        { problems },
        `freezeguard: ${problems.length} entr${problems.length === 1 ? 'y' : 'ies'} of the maintenance document could not be read; acting on the others`,
      );
    }
    this.documentProblems = problems;
    const changes = this.tracker.apply(document, now, rules);
    for (const t of changes.added) {
      this.#logger.info(
        {
          eventId: t.id,
          eventType: t.event.kind,
          eventStatus: t.event.status,
          notBefore: isoTime(t.event.notBefore),
          relevant: t.relevant,
          reason: t.reason,
        },
        'freezeguard: maintenance event seen',
      );
    }
    for (const t of changes.ended) {
      this.memory.ended(t.id);
      this.#logger.info(
        { eventId: t.id, eventType: t.event.kind, eventStatus: t.event.status },
        t.present
          ? `freezeguard: maintenance event ended (${t.event.status})`
          : 'freezeguard: maintenance event left the document',
      );
    }
    this.tracker.prune((id) => inCycle.has(id));
    return changes.incarnationChanged;
  }

  /**
   * Takes in a pause; false for an event-loop stall, which is never the freeze. `inCycle`:
   * outside a cycle an idle guard runs no second observer, so a late tick there may be a
   * stall as well as a stop; it is kept, but not announced as a pause.
   */
  pause(pause: PauseInfo, inCycle = true): boolean {
    if (pause.signal === 'stall') {
      this.#logger.info(
        { ...pause },
        'freezeguard: event-loop stall (only the main thread stopped); not a freeze',
      );
      return false;
    }
    if (!inCycle && pause.signal === 'tick-gap' && pause.corroborated === null) {
      this.#logger.debug(
        { ...pause },
        'freezeguard: the main thread ran late while idle (no second observer to tell a stall from a stop)',
      );
    } else this.#logger.info({ ...pause }, 'freezeguard: process pause detected');
    this.memory.recordPause({
      signal: pause.signal,
      detectedAt: pause.detectedAt,
      pausedMs: pause.pausedMs,
      clockStepMs: pause.clockStepMs,
      seq: this.tracker.seq,
    });
    return true;
  }
}
