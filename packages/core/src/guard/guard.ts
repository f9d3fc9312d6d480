import {
  isShutdownEvent,
  KNOWN_EVENT_TYPES,
  type KnownEventType,
  type ScheduledEvent,
  type ScheduledEventsDocument,
} from '../document.js';
import { TypedEmitter } from '../emitter.js';
import { assertOption, errorSummary, FreezeguardError, withDefaults } from '../errors.js';
import type { FleetCoordinator } from '../fleet.js'; // HOOK(issue-13)
import { createConsoleLogger, type Logger } from '../logger.js';
import type { MaintenanceSource, SourceHealth } from '../sources/source.js';
import {
  type Clock,
  sleep,
  systemClock,
  systemTimers,
  type TimerHandle,
  type Timers,
} from '../time/clock.js';
import { createPauseDetector, type PauseInfo } from '../time/pause.js';

/**
 * Lifecycle states. `isReady()` (serve traffic) is true only in `idle` and `scheduled`.
 * - `idle`: no event concerns this VM.
 * - `scheduled`: an event is known but not due for preparing yet.
 * - `preparing`: participants are running `prepare` (health is already failing).
 * - `ready`: every participant prepared; waiting for the freeze.
 * - `frozen`: the event started or a pause was observed; waiting for the resume condition.
 * - `resuming`: participants are running `resume`, in reverse phase order.
 * - `shutting-down`: prepared for an event the VM does not survive (Reboot, Redeploy…).
 */
export type GuardState =
  | 'idle'
  | 'scheduled'
  | 'preparing'
  | 'ready'
  | 'frozen'
  | 'resuming'
  | 'shutting-down';

/** Participant phases, in prepare order (resume runs them in reverse). */
export type Phase = 'traffic' | 'work' | 'data';
/** Prepare order of the phases. */
export const PHASES: readonly Phase[] = ['traffic', 'work', 'data'];

/** When to POST `StartRequests` for an event (it then starts without waiting for NotBefore). */
export type ApprovalPolicy = 'never' | 'solo' | 'always' | 'fleet'; // HOOK(issue-13): 'fleet'
/** What ends a freeze: a pause observed after the event became due, or only its removal. */
export type ResumeWhen = 'after-pause' | 'removed';

/** Handed to `participant.prepare`. */
export interface PrepareContext {
  /** The event that opened this cycle. */
  readonly event: ScheduledEvent;
  /** Every event in this cycle so far. */
  readonly events: readonly ScheduledEvent[];
  /** Wall-clock epoch ms by which prepare should be done; it is abandoned after. */
  readonly deadline: number;
  /** Aborted at the deadline, or when the event is cancelled while preparing. */
  readonly signal: AbortSignal;
  /** Until this wall-clock time the load balancer may still send us requests. */
  readonly drainUntil: number;
  /** True when the VM will not come back in place (Reboot, Redeploy, Preempt, Terminate). */
  readonly shutdown: boolean;
  readonly logger: Logger;
}

/** Handed to `participant.resume`. */
export interface ResumeContext {
  readonly event: ScheduledEvent;
  readonly events: readonly ScheduledEvent[];
  /** True when every event of the cycle was removed before it started. */
  readonly cancelled: boolean;
  /** Sum of the pauses measured during the cycle, ms (0 if none). */
  readonly pausedMs: number;
  /** Sum of the wall-clock steps measured during the cycle, ms. */
  readonly clockStepMs: number;
  readonly deadline: number;
  readonly signal: AbortSignal;
  readonly logger: Logger;
}

/**
 * Something that must get out of the way before a freeze and come back after it.
 *
 * @example
 * ```ts
 * guard.use({
 *   name: 'cache-warmer',
 *   phase: 'work',
 *   prepare: async ({ signal }) => warmer.stop({ signal }),
 *   resume: async () => warmer.start(),
 * });
 * ```
 */
export interface Participant {
  readonly name: string;
  readonly phase: Phase;
  prepare?(context: PrepareContext): unknown;
  resume?(context: ResumeContext): unknown;
  /** Overrides the guard's `prepareTimeoutMs` for this participant's prepare. */
  readonly prepareTimeoutMs?: number;
  /** Overrides the guard's `resumeTimeoutMs` for this participant's resume. */
  readonly resumeTimeoutMs?: number;
  /** @deprecated Sets both `prepareTimeoutMs` and `resumeTimeoutMs`; prefer those. */
  readonly timeoutMs?: number;
}

/** How one participant call went. */
export interface CallOutcome {
  readonly outcome: 'ok' | 'error' | 'timeout';
  readonly startedAt: number;
  readonly durationMs: number;
  readonly error?: { readonly name: string; readonly code?: string; readonly message: string };
}

/** One event as `status()` reports it. */
export interface EventReport {
  readonly eventId: string;
  readonly eventType: string;
  readonly eventStatus: string;
  readonly notBefore: string | null;
  readonly resources: readonly string[];
  readonly durationInSeconds: number | null;
  readonly description: string | null;
  readonly relevant: boolean;
  /** Why the event is ignored, when it is. */
  readonly reason: string | null;
  readonly approved: boolean;
  /** A cycle finished with it; it is ignored until it leaves the document. */
  readonly handled: boolean;
}

/** `guard.status()`: JSON-serialisable. */
export interface GuardStatus {
  readonly state: GuardState;
  readonly ready: boolean;
  readonly running: boolean;
  readonly resourceName: string | null;
  readonly resourceNameError: string | null;
  readonly source: SourceHealth & {
    readonly kind: string;
    readonly documentIncarnation: number | null;
  };
  readonly events: readonly EventReport[];
  readonly cycle: {
    readonly startedAt: string;
    readonly eventIds: readonly string[];
    readonly prepared: boolean;
    readonly failsafe: boolean;
  } | null;
  readonly expectedResumeAt: string | null;
  readonly participants: readonly {
    readonly name: string;
    readonly phase: Phase;
    readonly prepare: CallOutcome | null;
    readonly resume: CallOutcome | null;
  }[];
  readonly lastPause: PauseInfo | null;
  readonly warnings: readonly { readonly at: string; readonly message: string }[];
}

/** Typed guard events. */
export interface GuardEvents {
  state: (state: GuardState, previous: GuardState) => void;
  /** A new document (DocumentIncarnation changed). */
  event: (document: ScheduledEventsDocument) => void;
  pause: (pause: PauseInfo) => void;
  approved: (info: { readonly eventId: string; readonly event: ScheduledEvent }) => void;
  error: (error: FreezeguardError) => void;
  /** Prepared for an event the VM will not survive in place. */
  shutdown: (event: ScheduledEvent) => void;
  /** A participant call finished (for metrics and traces). */
  participant: (info: ParticipantCallInfo) => void;
  /**
   * A cycle ended: `resumed` after the maintenance, `cancelled` when it never happened,
   * `failsafe` when `maxHoldMs` gave up waiting, `shutdown` when the VM will not come back.
   */
  cycle: (info: CycleInfo) => void;
  /** A cycle ended; `cancelled` when no event of it happened. */
  resumed: (info: {
    readonly cancelled: boolean;
    readonly pausedMs: number;
    readonly failsafe: boolean;
  }) => void;
}
/** Payload of the `participant` guard event. */
export interface ParticipantCallInfo extends CallOutcome {
  readonly name: string;
  readonly phase: Phase;
  readonly step: 'prepare' | 'resume';
}

/** How a cycle ended. */
export type CycleOutcome = 'resumed' | 'cancelled' | 'failsafe' | 'shutdown';

/** Payload of the `cycle` guard event. */
export interface CycleInfo {
  readonly outcome: CycleOutcome;
  readonly eventIds: readonly string[];
  readonly eventType: string;
  /** Wall-clock ms the cycle began (preparing). */
  readonly startedAt: number;
  /** Wall-clock ms it ended (ready again, or shutting down). */
  readonly endedAt: number;
  /** How long the instance was out of rotation, ms (0 if it never drained). */
  readonly outOfRotationMs: number;
  readonly pausedMs: number;
}

/** Names of {@link GuardEvents}. */
export type GuardEventName = keyof GuardEvents;

/** Options of {@link createGuard}. All optional. */
export interface GuardOptions {
  /** Default: `azureScheduledEvents()` (honours `FREEZEGUARD_IMDS_ENDPOINT`). */
  readonly source?: MaintenanceSource;
  /** This VM's name in `Resources`. Default: `FREEZEGUARD_RESOURCE_NAME`, else IMDS `compute/name`. */
  readonly resourceName?: string;
  /** Event types to act on. Default all known. */
  readonly eventTypes?: readonly KnownEventType[];
  readonly approve?: ApprovalPolicy;
  readonly fleet?: FleetCoordinator; // HOOK(issue-13): fleet coordinator (guard logic: issue 11)
  /** Start preparing this long before NotBefore. Default 60 s. */
  readonly leadTimeMs?: number;
  /** The work phase starts no earlier than this after preparing began. Default 15 s. */
  readonly drainDelayMs?: number;
  /** Per participant. Default 30 s. */
  readonly prepareTimeoutMs?: number;
  /** Per participant. Default 30 s. */
  readonly resumeTimeoutMs?: number;
  readonly resumeWhen?: ResumeWhen;
  /** A tick gap or clock step at least this long is a pause. Default 1000 ms. */
  readonly pauseThresholdMs?: number;
  /** How often the pause detector looks. Default 100 ms. */
  readonly tickIntervalMs?: number;
  /** Resume anyway this long after the event became due. Default 120 s. */
  readonly maxHoldMs?: number;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly timers?: Timers;
}

/** The guard: one per process. */
export interface Guard {
  readonly state: GuardState;
  /** This VM's name once known. */
  readonly resourceName: string | undefined;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly timers: Timers;
  /** True while the instance should receive traffic (`idle` or `scheduled`). */
  isReady(): boolean;
  /** False once prepared for an event the VM does not survive. */
  isLive(): boolean;
  /** When the current cycle is expected to be over (epoch ms), or null outside one. */
  expectedResumeAt(): number | null;
  status(): GuardStatus;
  /** Registers a participant; returns a function that unregisters it. */
  use(participant: Participant): () => void;
  on<K extends GuardEventName>(name: K, listener: GuardEvents[K]): () => void;
  off<K extends GuardEventName>(name: K, listener: GuardEvents[K]): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface Tracked {
  event: ScheduledEvent;
  present: boolean;
  startedAt: number | null;
  /** Last time a document still listed it as Scheduled. */
  scheduledSeenAt: number | null;
  approvedAt: number | null;
  relevant: boolean;
  reason: string | null;
  handled: boolean;
}

interface Cycle {
  readonly primary: Tracked;
  readonly events: Map<string, Tracked>;
  readonly startedAt: number;
  readonly controller: AbortController;
  readonly invoked: Set<Participant>;
  readonly pauses: PauseInfo[];
  prepareDone: boolean;
  resuming: boolean;
  failsafe: boolean;
  shutdownAnnounced: boolean;
  preparing: Promise<void>;
}

const DEFAULTS = {
  approve: 'never' as ApprovalPolicy,
  leadTimeMs: 60_000,
  drainDelayMs: 15_000,
  prepareTimeoutMs: 30_000,
  resumeTimeoutMs: 30_000,
  resumeWhen: 'after-pause' as ResumeWhen,
  pauseThresholdMs: 1000,
  tickIntervalMs: 100,
  maxHoldMs: 120_000,
};

/** Retry-After fallback when an event does not say how long it lasts. */
const UNKNOWN_DURATION_MS = 30_000;

type Resolved = typeof DEFAULTS & {
  eventTypes: readonly KnownEventType[];
  resourceName: string | undefined;
};

function resolveOptions(options: GuardOptions): Resolved {
  const o = withDefaults<Resolved>(
    {
      ...DEFAULTS,
      eventTypes: KNOWN_EVENT_TYPES,
      resourceName: process.env.FREEZEGUARD_RESOURCE_NAME || undefined,
    },
    options,
  );
  for (const key of ['leadTimeMs', 'drainDelayMs'] as const) {
    assertOption(Number.isFinite(o[key]) && o[key] >= 0, key, 'must be a number ≥ 0', o[key]);
  }
  for (const key of [
    'prepareTimeoutMs',
    'resumeTimeoutMs',
    'pauseThresholdMs',
    'tickIntervalMs',
    'maxHoldMs',
  ] as const) {
    assertOption(Number.isFinite(o[key]) && o[key] > 0, key, 'must be a number > 0', o[key]);
  }
  assertOption(
    o.tickIntervalMs * 2 <= o.pauseThresholdMs,
    'tickIntervalMs',
    'must be at most half of pauseThresholdMs',
    o.tickIntervalMs,
  );
  assertOption(
    ['never', 'solo', 'always'].includes(o.approve),
    'approve',
    "must be 'never', 'solo' or 'always'",
    o.approve,
  );
  assertOption(
    ['after-pause', 'removed'].includes(o.resumeWhen),
    'resumeWhen',
    "must be 'after-pause' or 'removed'",
    o.resumeWhen,
  );
  assertOption(
    Array.isArray(o.eventTypes) &&
      o.eventTypes.length > 0 &&
      o.eventTypes.every((t) => KNOWN_EVENT_TYPES.includes(t)),
    'eventTypes',
    `must be a non-empty array of ${KNOWN_EVENT_TYPES.join(', ')}`,
    o.eventTypes,
  );
  assertOption(
    o.resourceName === undefined ||
      (typeof o.resourceName === 'string' && o.resourceName.trim() !== ''),
    'resourceName',
    'must be a non-empty string',
    o.resourceName,
  );
  return o;
}

class GuardImpl implements Guard {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly #o: Resolved;
  readonly #source: MaintenanceSource;
  readonly #emitter: TypedEmitter<GuardEvents>;
  readonly #participants = new Set<Participant>();
  readonly #records = new Map<
    Participant,
    { prepare: CallOutcome | null; resume: CallOutcome | null }
  >();
  readonly #events = new Map<string, Tracked>();
  readonly #approvalsSent = new Set<string>();
  readonly #warnings: { at: string; message: string }[] = [];
  readonly #detector: { start(): void; stop(): void; setTick(ms: number): void };
  #state: GuardState = 'idle';
  #running = false;
  #stopped = false;
  #cycle: Cycle | null = null;
  #wakeTimer: TimerHandle | null = null;
  #nameTimer: TimerHandle | null = null;
  #resourceName: string | undefined;
  #resourceNameError: string | null = null;
  #incarnation: number | null = null;
  #lastPause: PauseInfo | null = null;

  constructor(options: GuardOptions) {
    this.#o = resolveOptions(options);
    this.logger = options.logger ?? createConsoleLogger();
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    assertOption(
      options.source !== undefined,
      'source',
      'must be a maintenance source (createGuard() from @freezeguard/core supplies the default)',
      options.source,
    );
    this.#source = options.source;
    this.#resourceName = this.#o.resourceName;
    this.#emitter = new TypedEmitter<GuardEvents>(() => this.logger);
    this.#detector = createPauseDetector({
      clock: this.clock,
      timers: this.timers,
      thresholdMs: this.#o.pauseThresholdMs,
      tickMs: this.#idleTickMs(),
      onPause: (pause) => this.#onPause(pause),
    });
  }

  get state(): GuardState {
    return this.#state;
  }

  get resourceName(): string | undefined {
    return this.#resourceName;
  }

  isReady(): boolean {
    return this.#state === 'idle' || this.#state === 'scheduled';
  }

  isLive(): boolean {
    return this.#state !== 'shutting-down';
  }

  on<K extends GuardEventName>(name: K, listener: GuardEvents[K]): () => void {
    return this.#emitter.on(name, listener);
  }

  off<K extends GuardEventName>(name: K, listener: GuardEvents[K]): void {
    this.#emitter.off(name, listener);
  }

  use(participant: Participant): () => void {
    assertOption(
      participant && typeof participant.name === 'string' && participant.name !== '',
      'participant.name',
      'must be a non-empty string',
      participant?.name,
    );
    assertOption(
      PHASES.includes(participant.phase),
      'participant.phase',
      `must be one of ${PHASES.join(', ')}`,
      participant.phase,
    );
    for (const key of ['prepare', 'resume'] as const) {
      const fn = participant[key];
      assertOption(
        fn === undefined || typeof fn === 'function',
        `participant.${key}`,
        'must be a function',
        fn,
      );
    }
    for (const key of ['timeoutMs', 'prepareTimeoutMs', 'resumeTimeoutMs'] as const) {
      const ms = participant[key];
      assertOption(
        ms === undefined || (Number.isFinite(ms) && ms > 0),
        `participant.${key}`,
        'must be a number > 0',
        ms,
      );
    }
    this.#participants.add(participant);
    this.#records.set(participant, { prepare: null, resume: null });
    const cycle = this.#cycle;
    // Joining mid-cycle: it must get out of the way too, and be brought back with the rest.
    if (cycle && !cycle.resuming && this.#running) {
      void this.#prepareOne(participant, cycle);
    }
    return () => {
      this.#participants.delete(participant);
      this.#records.delete(participant);
    };
  }

  async start(): Promise<void> {
    if (this.#running) return;
    if (this.#stopped)
      throw new FreezeguardError('ERR_STOPPED', 'a stopped guard cannot be started again');
    this.#running = true;
    this.#source.start({
      logger: this.logger,
      clock: this.clock,
      timers: this.timers,
      onDocument: (document) => this.#onDocument(document),
      onError: (error, streak) => {
        // Once per failure streak, like the log: a flapping IMDS must not flood listeners.
        if (streak === 1) this.#emitter.emit('error', error);
      },
    });
    this.#detector.start();
    if (this.#resourceName === undefined) this.#resolveName(0);
    this.logger.info(
      { source: this.#source.kind, resourceName: this.#resourceName ?? null },
      'freezeguard: watching for maintenance events',
    );
  }

  async stop(): Promise<void> {
    if (!this.#running) {
      this.#stopped = true;
      return;
    }
    this.#running = false;
    this.#stopped = true;
    this.#detector.stop();
    this.#clearWake();
    if (this.#nameTimer !== null) this.timers.clearTimeout(this.#nameTimer);
    this.#cycle?.controller.abort(new FreezeguardError('ERR_STOPPED', 'guard stopped'));
    await this.#source.stop();
  }

  expectedResumeAt(): number | null {
    const cycle = this.#cycle;
    if (!cycle) return null;
    const now = this.clock.now();
    if (cycle.resuming) return now;
    let latest = now;
    for (const t of cycle.events.values()) {
      if (!t.present) continue;
      const due = dueAt(t) ?? now;
      const duration = t.event.DurationInSeconds;
      const end =
        Math.max(due, now) + (duration && duration > 0 ? duration * 1000 : UNKNOWN_DURATION_MS);
      latest = Math.max(latest, Math.min(end, due + this.#o.maxHoldMs));
    }
    return latest;
  }

  status(): GuardStatus {
    const cycle = this.#cycle;
    const expected = this.expectedResumeAt();
    return {
      state: this.#state,
      ready: this.isReady(),
      running: this.#running,
      resourceName: this.#resourceName ?? null,
      resourceNameError: this.#resourceNameError,
      source: {
        kind: this.#source.kind,
        documentIncarnation: this.#incarnation,
        ...this.#source.health(),
      },
      events: [...this.#events.values()].map((t) => ({
        eventId: t.event.EventId,
        eventType: t.event.EventType,
        eventStatus: t.event.EventStatus,
        notBefore: t.event.notBefore === null ? null : new Date(t.event.notBefore).toISOString(),
        resources: [...t.event.Resources],
        durationInSeconds: t.event.DurationInSeconds ?? null,
        description: t.event.Description ?? null,
        relevant: t.relevant,
        reason: t.reason,
        approved: this.#approvalsSent.has(t.event.EventId),
        handled: t.handled,
      })),
      cycle: cycle
        ? {
            startedAt: new Date(cycle.startedAt).toISOString(),
            eventIds: [...cycle.events.keys()],
            prepared: cycle.prepareDone,
            failsafe: cycle.failsafe,
          }
        : null,
      expectedResumeAt: expected === null ? null : new Date(expected).toISOString(),
      participants: [...this.#participants].map((p) => ({
        name: p.name,
        phase: p.phase,
        prepare: this.#records.get(p)?.prepare ?? null,
        resume: this.#records.get(p)?.resume ?? null,
      })),
      lastPause: this.#lastPause,
      warnings: [...this.#warnings],
    };
  }

  #warn(facts: object, message: string): void {
    this.logger.warn(facts, message);
    this.#warnings.push({ at: new Date(this.clock.now()).toISOString(), message });
    if (this.#warnings.length > 20) this.#warnings.shift();
  }

  #resolveName(attempt: number): void {
    this.#source.resolveResourceName().then(
      (name) => {
        if (!this.#running) return;
        if (!name) throw new Error('IMDS returned an empty compute/name');
        this.#resourceName = name;
        this.#resourceNameError = null;
        this.logger.info({ resourceName: name }, 'freezeguard: resource name resolved');
        for (const t of this.#events.values()) this.#classify(t);
        this.#evaluate();
      },
      (err: unknown) => {
        if (!this.#running) return;
        this.#resourceNameError = `resource name unknown: ${errorSummary(err).message}`;
        if (attempt === 0) {
          this.logger.warn(
            { err: errorSummary(err) },
            'freezeguard: cannot read this VM name from IMDS; acting on no event until it is known',
          );
        }
        const delay = Math.min(30_000, 1000 * 2 ** attempt);
        this.#nameTimer = this.timers.setTimeout(() => this.#resolveName(attempt + 1), delay);
      },
    );
  }

  #classify(t: Tracked): void {
    const ev = t.event;
    const name = this.#resourceName;
    let reason: string | null = null;
    if (name === undefined) reason = this.#resourceNameError ?? 'resource name unknown';
    else if (!ev.Resources.includes(name)) reason = `not for this VM (${name} is not in Resources)`;
    else if (!KNOWN_EVENT_TYPES.includes(ev.EventType as KnownEventType))
      reason = `unknown EventType ${ev.EventType}`;
    else if (!this.#o.eventTypes.includes(ev.EventType as KnownEventType))
      reason = `EventType ${ev.EventType} not in eventTypes`;
    else if (ev.EventStatus !== 'Scheduled' && ev.EventStatus !== 'Started')
      reason = `unknown EventStatus ${ev.EventStatus}`;
    else if (ev.DurationInSeconds === 0) reason = 'DurationInSeconds is 0 (no impact)';
    t.relevant = reason === null;
    t.reason = reason;
  }

  #onDocument(document: ScheduledEventsDocument): void {
    if (!this.#running) return;
    const now = this.clock.now();
    const changed = document.DocumentIncarnation !== this.#incarnation;
    this.#incarnation = document.DocumentIncarnation;
    const seen = new Set<string>();
    for (const event of document.Events) {
      seen.add(event.EventId);
      let t = this.#events.get(event.EventId);
      if (!t) {
        t = {
          event,
          present: true,
          startedAt: null,
          scheduledSeenAt: null,
          approvedAt: null,
          relevant: false,
          reason: null,
          handled: false,
        };
        this.#events.set(event.EventId, t);
        this.#classify(t);
        this.logger.info(
          {
            eventId: event.EventId,
            eventType: event.EventType,
            notBefore: event.NotBefore,
            relevant: t.relevant,
            reason: t.reason,
          },
          'freezeguard: maintenance event seen',
        );
      }
      t.event = event;
      t.present = true;
      if (event.EventStatus === 'Scheduled') t.scheduledSeenAt = now;
      if (event.EventStatus === 'Started' && t.startedAt === null)
        t.startedAt = this.#startedSince(t, now);
      this.#classify(t);
    }
    for (const [id, t] of this.#events) {
      if (seen.has(id) || !t.present) continue;
      t.present = false;
      this.logger.info(
        { eventId: id, eventType: t.event.EventType },
        'freezeguard: maintenance event left the document',
      );
      if (!this.#cycle?.events.has(id)) this.#events.delete(id);
    }
    if (changed) this.#emitter.emit('event', document);
    this.#evaluate();
  }

  #onPause(pause: PauseInfo): void {
    this.#lastPause = pause;
    this.logger.info({ ...pause }, 'freezeguard: process pause detected');
    this.#emitter.emit('pause', pause);
    const cycle = this.#cycle;
    if (cycle && !cycle.resuming) {
      cycle.pauses.push(pause);
      this.#evaluate();
    }
  }

  /**
   * When an event we first see Started really started. Azure often freezes the VM within
   * a poll interval of starting the event, so the guard wakes up to a pause before it ever
   * saw `Started`: a pause that began after the last Scheduled sighting is that start.
   */
  #startedSince(t: Tracked, now: number): number {
    let started = now;
    const cycle = this.#cycle;
    if (cycle?.events.has(t.event.EventId) && t.scheduledSeenAt !== null) {
      for (const p of cycle.pauses) {
        const began = p.detectedAt - Math.max(0, p.pausedMs);
        if (p.detectedAt > t.scheduledSeenAt)
          started = Math.min(started, Math.max(began, t.scheduledSeenAt));
      }
    }
    return started;
  }

  #prepareAt(t: Tracked): number {
    if (t.event.EventStatus === 'Started' || t.event.notBefore === null)
      return Number.NEGATIVE_INFINITY;
    return t.event.notBefore - this.#o.leadTimeMs;
  }

  #setState(next: GuardState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    this.#detector.setTick(next === 'idle' ? this.#idleTickMs() : this.#o.tickIntervalMs);
    this.logger.info({ state: next, previous }, `freezeguard: ${previous} → ${next}`);
    this.#emitter.emit('state', next, previous);
  }

  // With nothing announced a pause changes nothing but the report, so the detector looks
  // less often: an idle guard must cost next to nothing.
  #idleTickMs(): number {
    return Math.max(
      this.#o.tickIntervalMs,
      Math.min(this.#o.pauseThresholdMs / 2, this.#o.tickIntervalMs * 4),
    );
  }

  #clearWake(): void {
    if (this.#wakeTimer !== null) this.timers.clearTimeout(this.#wakeTimer);
    this.#wakeTimer = null;
  }

  #wake(at: number): void {
    this.#clearWake();
    if (!Number.isFinite(at) || !this.#running) return;
    this.#wakeTimer = this.timers.setTimeout(
      () => {
        this.#wakeTimer = null;
        this.#evaluate();
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  // The single place that decides what happens next; called on every document, pause,
  // timer and finished phase. It is idempotent: calling it twice changes nothing.
  #evaluate(): void {
    if (!this.#running) return;
    const now = this.clock.now();
    let wakeAt = Number.POSITIVE_INFINITY;
    let pending = false;
    const due: Tracked[] = [];
    for (const t of this.#events.values()) {
      if (!t.present || !t.relevant || t.handled || this.#cycle?.events.has(t.event.EventId))
        continue;
      const at = this.#prepareAt(t);
      if (at <= now) due.push(t);
      else {
        pending = true;
        wakeAt = Math.min(wakeAt, at);
      }
    }
    let cycle = this.#cycle;
    if (due.length > 0 && !cycle) cycle = this.#beginCycle(due, now);
    else if (due.length > 0 && cycle && !cycle.resuming) {
      for (const t of due) cycle.events.set(t.event.EventId, t);
      if (cycle.prepareDone) {
        this.#approve(cycle);
        this.#announceShutdown(cycle);
      }
    }
    if (!cycle) {
      this.#setState(pending ? 'scheduled' : 'idle');
      this.#wake(wakeAt);
      return;
    }
    if (cycle.resuming) return;
    let allDone = true;
    for (const t of cycle.events.values()) {
      const verdict = this.#verdict(t, cycle, now);
      if (verdict === true) continue;
      allDone = false;
      wakeAt = Math.min(wakeAt, verdict);
    }
    if (allDone) {
      this.#clearWake();
      this.#resume(cycle);
      return;
    }
    if (cycle.prepareDone) this.#setState(this.#settledState(cycle));
    this.#wake(wakeAt);
  }

  /** `true` when the event no longer holds the cycle, else when to look again. */
  #verdict(t: Tracked, cycle: Cycle, now: number): true | number {
    if (!t.present) return true;
    if (isShutdownEvent(t.event.EventType)) return Number.POSITIVE_INFINITY;
    const due = dueAt(t);
    if (due === null) return Number.POSITIVE_INFINITY;
    const holdUntil = due + this.#o.maxHoldMs;
    if (this.#o.resumeWhen === 'after-pause' && cycle.pauses.some((p) => p.detectedAt >= due)) {
      const duration = t.event.DurationInSeconds ?? 0;
      const until = due + Math.max(0, duration) * 1000;
      if (now >= until) return true;
      return Math.min(until, holdUntil);
    }
    if (now >= holdUntil) {
      cycle.failsafe = true;
      this.#warn(
        { eventId: t.event.EventId, maxHoldMs: this.#o.maxHoldMs },
        `freezeguard: event ${t.event.EventId} still not over ${this.#o.maxHoldMs} ms after it became due; resuming anyway (maxHoldMs fail-safe)`,
      );
      return true;
    }
    return Math.max(holdUntil, now);
  }

  #settledState(cycle: Cycle): GuardState {
    let frozen = false;
    for (const t of cycle.events.values()) {
      if (!t.present) continue;
      if (isShutdownEvent(t.event.EventType)) return 'shutting-down';
      const due = dueAt(t);
      if (t.startedAt !== null || (due !== null && cycle.pauses.some((p) => p.detectedAt >= due)))
        frozen = true;
    }
    return frozen ? 'frozen' : 'ready';
  }

  #beginCycle(due: Tracked[], now: number): Cycle {
    const cycle: Cycle = {
      primary: due[0]!,
      events: new Map(due.map((t) => [t.event.EventId, t])),
      startedAt: now,
      controller: new AbortController(),
      invoked: new Set(),
      pauses: [],
      prepareDone: false,
      resuming: false,
      failsafe: false,
      shutdownAnnounced: false,
      preparing: Promise.resolve(),
    };
    this.#cycle = cycle;
    this.logger.info(
      { eventIds: [...cycle.events.keys()], eventType: cycle.primary.event.EventType },
      'freezeguard: preparing for maintenance',
    );
    this.#setState('preparing');
    cycle.preparing = this.#runPrepare(cycle)
      .catch((err) =>
        this.logger.error({ err: errorSummary(err) }, 'freezeguard: prepare failed unexpectedly'),
      )
      .finally(() => {
        cycle.prepareDone = true;
        if (this.#cycle !== cycle || cycle.resuming || !this.#running) return;
        this.#approve(cycle);
        this.#announceShutdown(cycle);
        this.#evaluate();
      });
    return cycle;
  }

  async #runPrepare(cycle: Cycle): Promise<void> {
    const signal = cycle.controller.signal;
    for (const phase of PHASES) {
      if (signal.aborted || !this.#running) return;
      const list = [...this.#participants].filter((p) => p.phase === phase);
      await Promise.all(list.map((p) => this.#prepareOne(p, cycle)));
      if (phase === 'traffic') {
        // Health failed the moment preparing began; give the load balancer time to notice
        // before anything stops working (and before any approval can start the freeze).
        const remaining = cycle.startedAt + this.#o.drainDelayMs - this.clock.now();
        if (remaining > 0) await sleep(this.timers, remaining, signal).catch(() => {});
      }
    }
  }

  async #prepareOne(p: Participant, cycle: Cycle): Promise<void> {
    if (!this.#participants.has(p) || cycle.invoked.has(p)) return;
    cycle.invoked.add(p);
    const timeoutMs = p.prepareTimeoutMs ?? p.timeoutMs ?? this.#o.prepareTimeoutMs;
    const controller = linkedController(cycle.controller.signal);
    const deadline = this.clock.now() + timeoutMs;
    const ctx: PrepareContext = {
      event: cycle.primary.event,
      events: [...cycle.events.values()].map((t) => t.event),
      deadline,
      signal: controller.signal,
      drainUntil: cycle.startedAt + this.#o.drainDelayMs,
      shutdown: [...cycle.events.values()].some((t) => isShutdownEvent(t.event.EventType)),
      logger: this.logger,
    };
    const outcome = await this.#call(p, 'prepare', () => p.prepare?.(ctx), timeoutMs, controller);
    const record = this.#records.get(p);
    if (record) record.prepare = outcome;
  }

  async #call(
    p: Participant,
    kind: 'prepare' | 'resume',
    fn: () => unknown,
    timeoutMs: number,
    controller: AbortController,
  ): Promise<CallOutcome> {
    const startedAt = this.clock.now();
    const t0 = this.clock.monotonic();
    let timer: TimerHandle | null = null;
    const result = await new Promise<Omit<CallOutcome, 'startedAt' | 'durationMs'>>((resolve) => {
      timer = this.timers.setTimeout(() => {
        const error = new FreezeguardError(
          'ERR_PARTICIPANT_TIMEOUT',
          `participant ${p.name} did not finish ${kind} within ${timeoutMs} ms`,
        );
        controller.abort(error);
        resolve({ outcome: 'timeout', error: error.toJSON() });
      }, timeoutMs);
      // A participant may throw synchronously, return a value or a promise: all isolated here.
      Promise.resolve()
        .then(fn)
        .then(
          () => resolve({ outcome: 'ok' }),
          (err: unknown) => resolve({ outcome: 'error', error: errorSummary(err) }),
        );
    });
    if (timer !== null) this.timers.clearTimeout(timer);
    const outcome: CallOutcome = {
      ...result,
      startedAt,
      durationMs: Math.round(this.clock.monotonic() - t0),
    };
    this.#emitter.emit('participant', { ...outcome, name: p.name, phase: p.phase, step: kind });
    const facts = { participant: p.name, phase: p.phase, durationMs: outcome.durationMs };
    if (outcome.outcome === 'ok') this.logger.debug(facts, `freezeguard: ${kind} ${p.name} done`);
    else if (outcome.outcome === 'timeout')
      this.#warn(facts, `freezeguard: ${kind} of ${p.name} overran ${timeoutMs} ms; skipped`);
    else
      this.logger.error(
        { ...facts, err: outcome.error },
        `freezeguard: ${kind} of ${p.name} failed; skipped`,
      );
    return outcome;
  }

  #approve(cycle: Cycle): void {
    const name = this.#resourceName;
    if (this.#o.approve === 'never' || name === undefined || !cycle.prepareDone) return;
    for (const t of cycle.events.values()) {
      const ev = t.event;
      const id = ev.EventId;
      if (!t.present || ev.EventStatus !== 'Scheduled' || this.#approvalsSent.has(id)) continue;
      if (!ev.Resources.includes(name)) continue;
      // Approving releases the event for every VM listed; `solo` only does so when that is us alone.
      if (this.#o.approve === 'solo' && ev.Resources.length !== 1) continue;
      this.#approvalsSent.add(id);
      this.#source.approve(id).then(
        () => {
          t.approvedAt = this.clock.now();
          this.logger.info({ eventId: id }, 'freezeguard: event approved (StartRequests sent)');
          this.#emitter.emit('approved', { eventId: id, event: ev });
          this.#evaluate();
        },
        (err: unknown) => {
          const error =
            err instanceof FreezeguardError
              ? err
              : new FreezeguardError(
                  'ERR_IMDS_UNREACHABLE',
                  `approval failed: ${errorSummary(err).message}`,
                  { cause: err },
                );
          this.logger.error(
            { eventId: id, err: error.toJSON() },
            'freezeguard: approving the event failed',
          );
          this.#emitter.emit('error', error);
        },
      );
    }
  }

  #announceShutdown(cycle: Cycle): void {
    if (cycle.shutdownAnnounced) return;
    const shutdown = [...cycle.events.values()].find(
      (t) => t.present && isShutdownEvent(t.event.EventType),
    );
    if (!shutdown) return;
    cycle.shutdownAnnounced = true;
    this.#setState('shutting-down');
    this.#emitter.emit('shutdown', shutdown.event);
    const now = this.clock.now();
    this.#emitter.emit('cycle', {
      outcome: 'shutdown',
      eventIds: [...cycle.events.keys()],
      eventType: shutdown.event.EventType,
      startedAt: cycle.startedAt,
      endedAt: now,
      outOfRotationMs: now - cycle.startedAt,
      pausedMs: cycle.pauses.reduce((sum, p) => sum + p.pausedMs, 0),
    });
  }

  #resume(cycle: Cycle): void {
    cycle.resuming = true;
    cycle.controller.abort(new FreezeguardError('ERR_STOPPED', 'cycle over: resuming'));
    this.#setState('resuming');
    const events = [...cycle.events.values()];
    const happened = events.some((t) => {
      const due = dueAt(t);
      return (
        t.startedAt !== null || (due !== null && cycle.pauses.some((p) => p.detectedAt >= due))
      );
    });
    const cancelled = !happened && events.every((t) => !t.present);
    const pausedMs = cycle.pauses.reduce((sum, p) => sum + p.pausedMs, 0);
    const clockStepMs = cycle.pauses.reduce((sum, p) => sum + p.clockStepMs, 0);
    const run = async () => {
      await cycle.preparing;
      for (const phase of [...PHASES].reverse()) {
        if (!this.#running) return;
        const list = [...cycle.invoked].filter(
          (p) => p.phase === phase && this.#participants.has(p),
        );
        await Promise.all(
          list.map(async (p) => {
            const timeoutMs = p.resumeTimeoutMs ?? p.timeoutMs ?? this.#o.resumeTimeoutMs;
            const controller = new AbortController();
            const ctx: ResumeContext = {
              event: cycle.primary.event,
              events: events.map((t) => t.event),
              cancelled,
              pausedMs,
              clockStepMs,
              deadline: this.clock.now() + timeoutMs,
              signal: controller.signal,
              logger: this.logger,
            };
            const outcome = await this.#call(
              p,
              'resume',
              () => p.resume?.(ctx),
              timeoutMs,
              controller,
            );
            const record = this.#records.get(p);
            if (record) record.resume = outcome;
          }),
        );
      }
    };
    run()
      .catch((err) =>
        this.logger.error({ err: errorSummary(err) }, 'freezeguard: resume failed unexpectedly'),
      )
      .finally(() => {
        if (this.#cycle !== cycle) return;
        for (const t of events) {
          if (t.present) t.handled = true;
          else this.#events.delete(t.event.EventId);
        }
        this.#cycle = null;
        if (!this.#running) return;
        this.logger.info({ cancelled, pausedMs, failsafe: cycle.failsafe }, 'freezeguard: resumed');
        this.#emitter.emit('resumed', { cancelled, pausedMs, failsafe: cycle.failsafe });
        const endedAt = this.clock.now();
        this.#emitter.emit('cycle', {
          outcome: cycle.failsafe ? 'failsafe' : cancelled ? 'cancelled' : 'resumed',
          eventIds: events.map((t) => t.event.EventId),
          eventType: cycle.primary.event.EventType,
          startedAt: cycle.startedAt,
          endedAt,
          outOfRotationMs: endedAt - cycle.startedAt,
          pausedMs,
        });
        this.#evaluate();
      });
  }
}

/** When an event could start: the earliest of NotBefore, seen Started, and approved. */
function dueAt(t: Tracked): number | null {
  const candidates = [t.event.notBefore, t.startedAt, t.approvedAt].filter(
    (v): v is number => v !== null,
  );
  return candidates.length === 0 ? null : Math.min(...candidates);
}

function linkedController(parent: AbortSignal): AbortController {
  const controller = new AbortController();
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener('abort', () => controller.abort(parent.reason), { once: true });
  return controller;
}

/**
 * Throws `ERR_BAD_OPTION` unless `guard` is a guard: every adapter checks its first
 * argument with this.
 *
 * @example
 * ```ts
 * export function guardThing(guard: Guard, thing: Thing) {
 *   assertGuard(guard);
 *   …
 * }
 * ```
 */
export function assertGuard(guard: unknown): asserts guard is Guard {
  assertOption(
    typeof guard === 'object' && guard !== null && typeof (guard as Guard).use === 'function',
    'guard',
    'must be a guard from createGuard()',
    guard,
  );
}

/**
 * The guard without a default source: what `createGuard()` wraps. Use `createGuard()`.
 *
 * @example
 * ```ts
 * const guard = createGuardWithSource({ source: new MemorySource({ resourceName: 'vm-1' }) });
 * ```
 */
export function createGuardWithSource(options: GuardOptions): Guard {
  return new GuardImpl(options);
}
