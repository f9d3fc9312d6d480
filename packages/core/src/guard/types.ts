import type { BalancerOption, BalancerProfile } from '../drain/balancer.js';
import type { FreezeguardError } from '../errors.js';
import type { KnownEventType, MaintenanceDocument, MaintenanceEvent } from '../event.js';
import type { FleetCoordinator, FleetStatus } from '../fleet.js';
import type { Logger } from '../logger.js';
import type { MaintenanceSource, SourceHealth } from '../sources/source.js';
import type { Clock, Timers } from '../time/clock.js';
import type { PauseInfo } from '../time/pause.js';
import type { SignalOptions } from './signals.js';

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

/**
 * When to ask the platform to start an event now (Azure: POST `StartRequests`), which
 * releases it for every VM it lists. Never while a participant failed its prepare.
 * - `never` (default): wait for NotBefore;
 * - `solo`: when prepared and this VM is the only one the event lists;
 * - `always`: when prepared, whoever else the event lists;
 * - `fleet`: when every VM the event lists is a member of this guard's fleet and has
 *   prepared (needs the `fleet` option); the last one to prepare approves.
 */
export type ApprovalPolicy = 'never' | 'solo' | 'always' | 'fleet';
/** What ends a freeze: a pause observed after the event became due, or only its removal. */
export type ResumeWhen = 'after-pause' | 'removed';
/**
 * How much the guard does:
 * - `active` (default): drains, pauses, flushes and approves as configured;
 * - `observe`: watches and decides as `active` would, logs what it would do and when
 *   (drain at…, approve at…) and emits its events (metrics keep working), but never fails
 *   readiness, never calls a participant, never approves; the dry run before trusting it;
 * - `disabled`: inert: no polling, never drains (`FREEZEGUARD_DISABLED=1`).
 */
export type GuardMode = 'active' | 'observe' | 'disabled';

/** Handed to `participant.prepare`. */
export interface PrepareContext {
  /** The event that opened this cycle. */
  readonly event: MaintenanceEvent;
  /** Every event in this cycle so far. */
  readonly events: readonly MaintenanceEvent[];
  /** Wall-clock epoch ms by which prepare should be done; it is abandoned after. */
  readonly deadline: number;
  /** Aborted at the deadline, or when the event is cancelled while preparing. */
  readonly signal: AbortSignal;
  /** Until this wall-clock time the load balancer may still send us requests. */
  readonly drainUntil: number;
  /** True when the VM will not come back in place (Reboot, Redeploy, Preempt, Terminate). */
  readonly shutdown: boolean;
  /**
   * False when this member of a fleet did not get a drain slot: it keeps serving, so a
   * `traffic` participant is not called at all; `work` and `data` ones still are.
   */
  readonly draining: boolean;
  readonly logger: Logger;
}

/** Handed to `participant.resume`. */
export interface ResumeContext {
  readonly event: MaintenanceEvent;
  readonly events: readonly MaintenanceEvent[];
  /** True when no event of the cycle happened (removed, cancelled or rescheduled before it started). */
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
  /**
   * A `traffic` participant that sees the balancers' probes (the HTTP adapters) tells
   * whether they have let go: the guard approves only once every such participant says
   * `confirmed` (or, where nothing probes, once `drainDelayMs` has passed).
   */
  drainState?(): DrainState;
  /**
   * A `traffic` participant that runs the app's readiness checks (the HTTP adapters) says
   * whether they passed when last asked: a fleet counts a member whose checks fail as not
   * serving, so it never lets another member drain on the strength of it.
   */
  healthy?(): boolean;
  /** Overrides the guard's `prepareTimeoutMs` for this participant's prepare. */
  readonly prepareTimeoutMs?: number;
  /** Overrides the guard's `resumeTimeoutMs` for this participant's resume. */
  readonly resumeTimeoutMs?: number;
}

/**
 * Whether the balancers have let go of this instance, as a `traffic` participant sees it:
 * `serving` (not draining), `unprobed` (draining, but nothing probes readiness: only the
 * fixed `drainDelayMs` can tell), `pending`, or `confirmed`.
 */
export type DrainState = 'serving' | 'unprobed' | 'pending' | 'confirmed';

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
  /** `active`, `observe` (nothing is drained, paused or approved) or `disabled`. */
  readonly mode: GuardMode;
  readonly ready: boolean;
  readonly running: boolean;
  readonly resourceName: string | null;
  readonly resourceNameError: string | null;
  readonly source: SourceHealth & {
    readonly kind: string;
    readonly documentIncarnation: number | null;
    /** The URL the source reads, when it names one. */
    readonly endpoint: string | null;
    /** False when the source reads nothing on purpose (kind `none`: no cloud detected). */
    readonly watching: boolean;
    /** ISO time since which no good answer came, while blind. */
    readonly blindSince: string | null;
    /** The last error, or that nothing answered, while blind. */
    readonly blindCause: string | null;
  };
  /**
   * True when the source gave no good answer for `blindAfterMs`: the guard cannot see
   * maintenance. Readiness is unaffected; `freezeguard_source_up` is 0.
   */
  readonly blind: boolean;
  readonly events: readonly EventReport[];
  readonly cycle: {
    readonly startedAt: string;
    readonly eventIds: readonly string[];
    readonly prepared: boolean;
    /** A participant failed or overran its prepare: the guard will not approve. */
    readonly prepareFailed: boolean;
    /** False when a fleet member could not get a drain slot and keeps serving. */
    readonly draining: boolean;
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
  /** Entries of the last document that could not be read (the valid ones are kept). */
  readonly documentProblems: readonly string[];
  /** The fleet this guard belongs to, when it has one. */
  readonly fleet: FleetStatus | null;
  readonly warnings: readonly { readonly at: string; readonly message: string }[];
}

/** Typed guard events. */
export interface GuardEvents {
  state: (state: GuardState, previous: GuardState) => void;
  /** A new document (DocumentIncarnation changed). */
  event: (document: MaintenanceDocument) => void;
  pause: (pause: PauseInfo) => void;
  approved: (info: { readonly eventId: string; readonly event: MaintenanceEvent }) => void;
  error: (error: FreezeguardError) => void;
  /** Prepared for an event the VM will not survive in place. */
  shutdown: (event: MaintenanceEvent) => void;
  /** A participant call finished (for metrics and traces). */
  participant: (info: ParticipantCallInfo) => void;
  /**
   * A cycle ended: `resumed` after the maintenance, `cancelled` when it never happened,
   * `failsafe` when `maxHoldMs` gave up waiting, `shutdown` when the VM will not come back.
   */
  cycle: (info: CycleInfo) => void;
  /** A cycle ended and the instance serves again; `cancelled` when no event of it happened. */
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
  /** Default (from `createGuard()`): `defaultSource()`, Azure IMDS unless configured otherwise. */
  readonly source?: MaintenanceSource;
  /** This VM's name in `Resources`. Default: `FREEZEGUARD_RESOURCE_NAME`, else IMDS `compute/name`. */
  readonly resourceName?: string;
  /** Event types to act on. Default all known. */
  readonly eventTypes?: readonly KnownEventType[];
  readonly approve?: ApprovalPolicy;
  /** `active` (default), `observe` (dry run) or `disabled`. Default: `FREEZEGUARD_MODE` / `FREEZEGUARD_DISABLED`, else `active`. */
  readonly mode?: GuardMode;
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
  /**
   * Fail-safe: resume anyway this long after an event was seen `Started` with no pause
   * observed and the event still listed, or after the source has been blind this long
   * past NotBefore. Default 120 s.
   */
  readonly maxHoldMs?: number;
  /**
   * The source is blind once it gave no good answer for this long (since `start()` or
   * its last good answer): one error line naming the endpoint, cause and remedy, and
   * `status().blind`. Readiness is unaffected. Default 30 s.
   */
  readonly blindAfterMs?: number;
  /**
   * True: `start()` waits for the source's first good answer and rejects with
   * `ERR_SOURCE_BLIND` (endpoint, cause, remedy) once it is blind, or at once when no
   * cloud was detected; the guard is then stopped. Default false: a blind guard starts,
   * says so, and keeps trying.
   */
  readonly requireSource?: boolean;
  /**
   * The balancer in front of this instance: a preset (`azure-lb`, `azure-app-gateway`,
   * `kubernetes`, `aws-alb`, `aws-nlb`, `gcp-lb`) or `{ intervalMs, unhealthyThreshold }`.
   * The HTTP adapters count its failures before they confirm the drain, and it sets the
   * defaults of `drainDelayMs` and `leadTimeMs`. Default: `FREEZEGUARD_LB`, else Azure
   * Load Balancer's probe (every 5 s, out after 1 failure) with the plain defaults.
   */
  readonly lb?: BalancerOption;
  /**
   * Coordinates draining and approval with other instances, e.g. `redisFleet()` from
   * `@freezeguard/fleet`. Without it the guard meets the other guarded processes of its
   * VM (see `local`).
   */
  readonly fleet?: FleetCoordinator;
  /**
   * Meet the other guarded processes of this VM (node:cluster or PM2 workers, an API beside
   * a worker): one of them polls the metadata service and relays what it reads, and under
   * `approve: 'solo'` one StartRequests goes out once every one of them has prepared. Used
   * when no `fleet` is given and the source can tell the VM's unique id (the cloud
   * sources). Default: `FREEZEGUARD_LOCAL`, else true.
   */
  readonly local?: boolean;
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
  /** How the balancer in front of this instance probes (option `lb`): the HTTP adapters count its failures. */
  readonly balancer: BalancerProfile;
  /** True while the instance should receive traffic: `idle`, `scheduled`, or a fleet member that got no drain slot. */
  isReady(): boolean;
  /**
   * True while the process runs: maintenance never fails liveness. A liveness probe that
   * failed during a shutdown event's drain would have the orchestrator restart the process
   * in the middle of it.
   */
  isLive(): boolean;
  /** When the current cycle is expected to be over (epoch ms), or null outside one. */
  expectedResumeAt(): number | null;
  status(): GuardStatus;
  /** Registers a participant; returns a function that unregisters it. */
  use(participant: Participant): () => void;
  on<K extends GuardEventName>(name: K, listener: GuardEvents[K]): () => void;
  /** Like `on`, for one call; with `once` and `removeListener` Node's `events.once(guard, 'resumed')` works. */
  once<K extends GuardEventName>(name: K, listener: GuardEvents[K]): () => void;
  off<K extends GuardEventName>(name: K, listener: GuardEvents[K]): void;
  /** Same as `off`. */
  removeListener<K extends GuardEventName>(name: K, listener: GuardEvents[K]): void;
  start(): Promise<void>;
  /**
   * Resumes whatever the current cycle prepared, then stops watching. A stopped guard
   * cannot be started again.
   */
  stop(): Promise<void>;
  /**
   * Drains like a maintenance event the VM does not survive, for a SIGTERM or a rolling
   * deploy: `/ready` fails, workers pause, buffers flush; `isLive()` stays true. Resolves
   * when every participant prepared (or gave up).
   */
  shutdown(): Promise<void>;
  /**
   * Makes SIGTERM and SIGINT drain like `shutdown()` (readiness 503 at once, liveness 200,
   * workers paused, buffers flushed), then run `close`, stop the guard and exit 0 — all
   * within `timeoutMs` (default 25 s, inside Kubernetes' 30 s grace period). A second
   * signal exits at once. Installed once; returns the function that removes the handlers.
   */
  handleSignals(options?: SignalOptions): () => void;
}
