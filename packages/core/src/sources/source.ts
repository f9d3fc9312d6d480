import type { FreezeguardError } from '../errors.js';
import type { MaintenanceDocument } from '../event.js';
import type { Logger } from '../logger.js';
import type { Clock, Timers } from '../time/clock.js';

/** How a maintenance source has been doing; part of `guard.status()`. */
export interface SourceHealth {
  /** Wall-clock ms of the last good answer, or null. */
  readonly lastSuccessAt: number | null;
  readonly lastErrorAt: number | null;
  readonly lastError: { readonly code: string; readonly message: string } | null;
  /** Failures since the last good answer; 0 when healthy. */
  readonly consecutiveFailures: number;
  /** Every HTTP request made, retries and approvals included. */
  readonly requests: number;
  /**
   * Wall-clock ms the read now in flight began, or null between reads. A hanging GET
   * (GCE waits up to a minute for a change) is silent by design: after a good answer, the
   * time spent waiting on the next one does not make the source blind. Optional.
   */
  readonly readingSince?: number | null;
}

/** What a guard hands its source on `start()`. */
export interface SourceContext {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly timers: Timers;
  /** Called with every document read (also when unchanged). */
  onDocument(document: MaintenanceDocument): void;
  /** Called on every failed read; `streak` counts failures in a row, from 1. */
  onError(error: FreezeguardError, streak: number): void;
  /**
   * Called with an external clock reading when the source has one (the HTTP `Date`
   * header of a metadata answer): under a VM pause the guest's monotonic clock stands
   * still and its wall clock falls behind, so only an outside reference reveals the pause
   * before the guest's time sync steps the clock.
   */
  onTimeReference?(sample: TimeReferenceSample): void;
}

/** One reading of an external clock, taken when an answer arrived. */
export interface TimeReferenceSample {
  /** What the reference said, epoch ms (an HTTP `Date` header is truncated to the second). */
  readonly referenceMs: number;
  /** How coarse `referenceMs` is: 1000 for an HTTP `Date` header. */
  readonly resolutionMs: number;
  /** This process's wall clock when the answer arrived. */
  readonly wall: number;
  /** This process's monotonic clock when the answer arrived. */
  readonly monotonic: number;
  /** Where it came from, for logs: `imds-date`, `redis-time`… */
  readonly origin: string;
}

/**
 * Where maintenance events come from. `azureScheduledEvents()` is the built-in one; a
 * source for another cloud implements this interface.
 *
 * @example
 * ```ts
 * const source: MaintenanceSource = azureScheduledEvents({ pollIntervalMs: 1000 });
 * const guard = createGuard({ source });
 * ```
 */
export interface MaintenanceSource {
  /** A short name for logs and status, e.g. `azure-imds`. */
  readonly kind: string;
  /**
   * Begin reading; must never throw or leave a rejection unhandled. A source may be
   * started again after `stop()` (a fleet hands polling from member to member).
   */
  start(context: SourceContext): void;
  /** Stop reading, abort requests in flight, release sockets. */
  stop(): Promise<void>;
  /** This VM's name as the platform lists it in `Resources`, if the source can tell. */
  resolveResourceName(): Promise<string | undefined>;
  /**
   * This VM's unique id (Azure `compute/vmId`, GCE `instance/id`, EC2 `instance-id`),
   * never its name: names repeat across resource groups and zones, so everything kept per
   * VM (the poller election, approvals, the local process registry) is keyed by this id.
   * Resolves `undefined` when the platform answers an empty id; rejects when it cannot be
   * asked (the caller retries). Optional: a source without it cannot share a VM's work.
   */
  resolveVmId?(): Promise<string | undefined>;
  /** Ask the platform to start an event now (Azure: POST StartRequests). */
  approve(eventId: string): Promise<void>;
  /**
   * False when the platform has no approval call (GCE, EC2): the guard then never calls
   * `approve` and logs once that the `approve` option does not apply. Default true.
   */
  readonly supportsApproval?: boolean;
  /** The URL the source reads, for the blind-source log line and `status()`. Optional. */
  readonly endpoint?: string;
  /**
   * False for a source that reads nothing on purpose (no cloud detected): the guard is
   * then never blind, since no answer is expected. Default true.
   */
  readonly watching?: boolean;
  /**
   * How the source has been doing. The guard calls it whenever it looks at blindness
   * (about once a second) and on `status()`: keep it cheap.
   */
  health(): SourceHealth;
}
