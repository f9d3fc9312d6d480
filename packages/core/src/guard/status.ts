import { isoTime } from '../event.js';
import type { FleetStatus } from '../fleet.js';
import type { MaintenanceSource } from '../sources/source.js';
import type { BlindStatus } from './blind-watch.js';
import { type Cycle, isDraining } from './cycle.js';
import type { Observations } from './observations.js';
import type { Participants } from './participants.js';
import type { ResourceName } from './resource-name.js';
import type { TrackedEvent } from './tracker.js';
import type { EventReport, GuardState, GuardStatus } from './types.js';

/** The facts `status()` is made of. */
export interface StatusFacts {
  readonly state: GuardState;
  readonly ready: boolean;
  readonly running: boolean;
  readonly name: Pick<ResourceName, 'name' | 'error'>;
  readonly source: MaintenanceSource;
  readonly seen: Observations;
  readonly approvalsSent: ReadonlySet<string>;
  readonly cycle: Cycle | null;
  readonly expectedResumeAt: number | null;
  readonly participants: Participants;
  readonly fleet: FleetStatus | null;
  readonly blind: BlindStatus;
}

/** Builds the JSON-serialisable `guard.status()`. */
export function buildStatus(f: StatusFacts): Omit<GuardStatus, 'mode'> {
  const { seen, cycle } = f;
  return {
    state: f.state,
    ready: f.ready,
    running: f.running,
    resourceName: f.name.name ?? null,
    resourceNameError: f.name.error,
    source: {
      kind: f.source.kind,
      documentIncarnation: seen.tracker.incarnation,
      ...f.source.health(),
      endpoint: f.blind.endpoint,
      watching: f.blind.watching,
      blindSince: isoTime(f.blind.since),
      blindCause: f.blind.cause,
    },
    blind: f.blind.blind,
    events: seen.tracker
      .list()
      .filter((t) => t.present)
      .map((t) => report(t, f)),
    cycle: cycle
      ? {
          startedAt: isoTime(cycle.startedAt),
          eventIds: [...cycle.ids],
          prepared: cycle.prepared,
          prepareFailed: cycle.prepareFailed,
          draining: isDraining(cycle),
          failsafe: cycle.failsafe,
        }
      : null,
    expectedResumeAt: isoTime(f.expectedResumeAt),
    participants: f.participants.list().map((p) => ({
      name: p.name,
      phase: p.phase,
      ...f.participants.record(p),
    })),
    lastPause: seen.lastPause,
    documentProblems: [...seen.documentProblems],
    fleet: f.fleet,
    warnings: [...seen.warnings],
  };
}

function report(t: TrackedEvent, f: StatusFacts): EventReport {
  const ev = t.event;
  return {
    eventId: ev.id,
    eventType: ev.kind,
    eventStatus: ev.status,
    notBefore: isoTime(ev.notBefore),
    resources: [...ev.resources],
    durationInSeconds: ev.durationSeconds ?? null,
    description: ev.description ?? null,
    relevant: t.relevant,
    reason: t.reason ?? (t.active ? null : `ended (EventStatus ${ev.status})`),
    approved: f.approvalsSent.has(ev.id),
    handled: f.seen.memory.handled.has(ev.id),
  };
}
