import {
  isShutdownEvent,
  KNOWN_EVENT_TYPES,
  type KnownEventType,
  type MaintenanceDocument,
  type MaintenanceEvent,
} from '../event.js';

/**
 * One event as the guard knows it across documents. Times are wall-clock epoch ms of the
 * guard's own clock when a document was read.
 */
export interface TrackedEvent {
  readonly id: string;
  /** The latest version the platform sent. */
  readonly event: MaintenanceEvent;
  /** Listed in the last document read. */
  readonly present: boolean;
  /** Listed with a status that means "not over": `Scheduled` or `Started`. */
  readonly active: boolean;
  /** Concerns this VM and is a type the guard acts on. */
  readonly relevant: boolean;
  /** Why it is not relevant, when it is not. */
  readonly reason: string | null;
  /** First document that listed it as `Started` since it was last `Scheduled`. */
  readonly startedAt: number | null;
  /**
   * Document sequence numbers (1 for the first document read, then +1 per document) of
   * the first sighting, the last `Scheduled` one and the first `Started` one: ordering by
   * them survives a wall clock stepped backwards.
   */
  readonly firstSeenSeq: number;
  readonly lastScheduledSeq: number | null;
  readonly startedSeq: number | null;
}

/** What classifying an event needs. */
export interface RelevanceRules {
  readonly resourceName: string | undefined;
  readonly resourceNameError: string | null;
  readonly eventTypes: readonly KnownEventType[];
}

/** Statuses that mean the event is not over. Azure has no other; anything else ends it. */
export function isActiveStatus(status: string): boolean {
  return status === 'Scheduled' || status === 'Started';
}

/**
 * Why an event does not concern this guard, or null when it does. A status other than
 * Scheduled/Started does not make it irrelevant: it ends it.
 */
export function irrelevance(event: MaintenanceEvent, rules: RelevanceRules): string | null {
  const name = rules.resourceName;
  if (name === undefined) return rules.resourceNameError ?? 'resource name unknown';
  if (!event.resources.includes(name)) return `not for this VM (${name} is not in Resources)`;
  if (!KNOWN_EVENT_TYPES.includes(event.kind as KnownEventType))
    return `unknown EventType ${event.kind}`;
  if (!rules.eventTypes.includes(event.kind as KnownEventType))
    return `EventType ${event.kind} not in eventTypes`;
  // 0 means "no impact" for a pause; a duration estimate never makes a VM that goes
  // away (Reboot, Redeploy, Preempt, Terminate) irrelevant.
  if (event.durationSeconds === 0 && !isShutdownEvent(event.kind))
    return 'DurationInSeconds is 0 (no impact)';
  return null;
}

/** What one document changed, for logs and the `event` guard event. */
export interface TrackerChanges {
  readonly added: readonly TrackedEvent[];
  readonly ended: readonly TrackedEvent[];
  readonly incarnationChanged: boolean;
}

/**
 * Merges successive documents into {@link TrackedEvent}s: first sightings, status
 * history, and the end of an event (removal or a final status). No I/O, no timers: the
 * guard feeds it documents with the time they were read.
 *
 * @example
 * ```ts
 * const tracker = new EventTracker();
 * tracker.apply(document, clock.now(), rules);
 * for (const t of tracker.list()) if (t.relevant && t.active) …
 * ```
 */
export class EventTracker {
  readonly #events = new Map<string, TrackedEvent>();
  #incarnation: number | null = null;
  #seq = 0;

  get incarnation(): number | null {
    return this.#incarnation;
  }

  /** How many documents were read so far. */
  get seq(): number {
    return this.#seq;
  }

  list(): readonly TrackedEvent[] {
    return [...this.#events.values()];
  }

  get(id: string): TrackedEvent | undefined {
    return this.#events.get(id);
  }

  apply(document: MaintenanceDocument, now: number, rules: RelevanceRules): TrackerChanges {
    const seq = ++this.#seq;
    const incarnationChanged = document.incarnation !== this.#incarnation;
    this.#incarnation = document.incarnation;
    const added: TrackedEvent[] = [];
    const ended: TrackedEvent[] = [];
    const seen = new Set<string>();
    for (const event of document.events) {
      // A duplicate id in one document: the first entry wins, as a reader of the list would.
      if (seen.has(event.id)) continue;
      seen.add(event.id);
      const before = this.#events.get(event.id);
      const status = event.status;
      const active = isActiveStatus(status);
      const reason = irrelevance(event, rules);
      const keepStart = before?.active === true && before.startedSeq !== null;
      const next: TrackedEvent = {
        id: event.id,
        event,
        present: true,
        active,
        relevant: reason === null,
        reason,
        startedAt:
          status === 'Started'
            ? keepStart
              ? before.startedAt
              : now
            : status === 'Scheduled'
              ? null
              : (before?.startedAt ?? null),
        firstSeenSeq: before?.firstSeenSeq ?? seq,
        lastScheduledSeq: status === 'Scheduled' ? seq : (before?.lastScheduledSeq ?? null),
        startedSeq:
          status === 'Started'
            ? keepStart
              ? before.startedSeq
              : seq
            : status === 'Scheduled'
              ? null
              : (before?.startedSeq ?? null),
      };
      this.#events.set(event.id, next);
      if (!before) added.push(next);
      if (!active && (before === undefined || before.active)) ended.push(next);
    }
    for (const [id, t] of this.#events) {
      if (seen.has(id) || !t.present) continue;
      const next: TrackedEvent = { ...t, present: false, active: false };
      this.#events.set(id, next);
      if (t.active) ended.push(next);
    }
    return { added, ended, incarnationChanged };
  }

  /** Re-applies relevance rules, e.g. once the VM's name is known. */
  reclassify(rules: RelevanceRules): void {
    for (const [id, t] of this.#events) {
      const reason = irrelevance(t.event, rules);
      this.#events.set(id, { ...t, relevant: reason === null, reason });
    }
  }

  /** Forgets events that are over and that `keep` does not need any more. */
  prune(keep: (id: string) => boolean): void {
    for (const [id, t] of this.#events) if (!t.present && !keep(id)) this.#events.delete(id);
  }
}
