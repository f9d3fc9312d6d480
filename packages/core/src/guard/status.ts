import type { FleetStatus } from '../fleet.js';
import type { SourceHealth } from '../sources/source.js';
import type { PauseInfo } from '../time/pause.js';
import type { Participants } from './participants.js';
import type { HandledMark } from './policy.js';
import type { TrackedEvent } from './tracker.js';
import type { EventReport, GuardState, GuardStatus } from './types.js';

/** The facts `status()` is made of. */
export interface StatusFacts {
  readonly state: GuardState;
  readonly ready: boolean;
  readonly running: boolean;
  readonly resourceName: string | undefined;
  readonly resourceNameError: string | null;
  readonly source: SourceHealth & {
    readonly kind: string;
    readonly documentIncarnation: number | null;
  };
  readonly events: readonly TrackedEvent[];
  readonly handled: ReadonlyMap<string, HandledMark>;
  readonly approvalsSent: ReadonlySet<string>;
  readonly cycle: {
    readonly startedAt: number;
    readonly eventIds: readonly string[];
    readonly prepared: boolean;
    readonly prepareFailed: boolean;
    readonly draining: boolean;
    readonly failsafe: boolean;
  } | null;
  readonly expectedResumeAt: number | null;
  readonly participants: Participants;
  readonly lastPause: PauseInfo | null;
  readonly documentProblems: readonly string[];
  readonly fleet: FleetStatus | null;
  readonly warnings: readonly { readonly at: string; readonly message: string }[];
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Builds the JSON-serialisable `guard.status()`. */
export function buildStatus(f: StatusFacts): GuardStatus {
  return {
    state: f.state,
    ready: f.ready,
    running: f.running,
    resourceName: f.resourceName ?? null,
    resourceNameError: f.resourceNameError,
    source: f.source,
    events: f.events.filter((t) => t.present).map((t) => report(t, f)),
    cycle: f.cycle
      ? {
          startedAt: iso(f.cycle.startedAt),
          eventIds: [...f.cycle.eventIds],
          prepared: f.cycle.prepared,
          prepareFailed: f.cycle.prepareFailed,
          draining: f.cycle.draining,
          failsafe: f.cycle.failsafe,
        }
      : null,
    expectedResumeAt: f.expectedResumeAt === null ? null : iso(f.expectedResumeAt),
    participants: f.participants.list().map((p) => ({
      name: p.name,
      phase: p.phase,
      ...f.participants.record(p),
    })),
    lastPause: f.lastPause,
    documentProblems: [...f.documentProblems],
    fleet: f.fleet,
    warnings: [...f.warnings],
  };
}

function report(t: TrackedEvent, f: StatusFacts): EventReport {
  const ev = t.event;
  return {
    eventId: ev.EventId,
    eventType: ev.EventType,
    eventStatus: ev.EventStatus,
    notBefore: ev.notBefore === null ? null : iso(ev.notBefore),
    resources: [...ev.Resources],
    durationInSeconds: ev.DurationInSeconds ?? null,
    description: ev.Description ?? null,
    relevant: t.relevant,
    reason: t.reason ?? (t.active ? null : `ended (EventStatus ${ev.EventStatus})`),
    approved: f.approvalsSent.has(ev.EventId),
    handled: f.handled.has(ev.EventId),
  };
}
