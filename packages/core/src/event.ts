/*
 * freezeguard's model of a maintenance, the one every source builds and everything else
 * reads: no cloud's wire format (Azure's is read at its edge, in document.ts).
 */

/**
 * The kinds of maintenance freezeguard acts on: Azure's names, onto which GCE's and EC2's
 * notices are mapped. Unknown kinds are kept as plain strings.
 */
export type KnownEventType = 'Freeze' | 'Reboot' | 'Redeploy' | 'Preempt' | 'Terminate';
/** `KnownEventType`, or any future kind a platform adds (kept, never acted on). */
export type EventType = KnownEventType | (string & {});
/** Azure has no `Completed`: a finished or cancelled event leaves the document. */
export type EventStatus = 'Scheduled' | 'Started' | (string & {});

/** Every event type freezeguard knows how to act on. */
export const KNOWN_EVENT_TYPES: readonly KnownEventType[] = [
  'Freeze',
  'Reboot',
  'Redeploy',
  'Preempt',
  'Terminate',
];

/**
 * One maintenance the platform announced, in freezeguard's terms: every source (Azure,
 * GCE, EC2, a test's memory source) builds these, and the guard, its fleet and its
 * listeners see nothing else. Times are epoch milliseconds.
 *
 * @example
 * ```ts
 * guard.on('event', (doc) => {
 *   for (const e of doc.events) console.log(e.kind, e.id, e.status, e.notBefore);
 * });
 * ```
 */
export interface MaintenanceEvent {
  /** The platform's id of the event (Azure EventId, EC2 event id, a GCE-derived one). */
  readonly id: string;
  /** What happens to the VM: `Freeze` (a pause), `Reboot`, `Redeploy`, `Preempt`, `Terminate`… */
  readonly kind: EventType;
  /** `Scheduled`, then `Started`; an event that is over leaves the document. */
  readonly status: EventStatus;
  /** The VM names the event applies to (one event may list several VMs). */
  readonly resources: readonly string[];
  /** `VirtualMachine` on every platform so far. */
  readonly resourceType: string;
  /** Not before this time (epoch ms); `null` once started, or when the platform gives none. */
  readonly notBefore: number | null;
  /** Expected impact in seconds: `-1` unknown, `0` none; absent when the platform does not say. */
  readonly durationSeconds?: number;
  /** The platform's words about it (Azure Description, the GCE/EC2 notice it came from). */
  readonly description?: string;
  /** Who asked for it: `Platform` or `User`, when the platform says. */
  readonly origin?: string;
}

/** What a source read at one poll: every maintenance announced for this VM's view. */
export interface MaintenanceDocument {
  /** Rises whenever the platform's document changes. */
  readonly incarnation: number;
  /** The entries that could be read. */
  readonly events: readonly MaintenanceEvent[];
  /**
   * Entries that could not be read, one message each (absent when all could). One bad
   * entry must not hide a valid Freeze next to it.
   */
  readonly problems?: readonly string[];
}

/**
 * An epoch-ms time as ISO 8601 for logs and reports, `null` as `null`.
 *
 * @example
 * ```ts
 * isoTime(0); // '1970-01-01T00:00:00.000Z'
 * ```
 */
export function isoTime(ms: number): string;
export function isoTime(ms: number | null): string | null;
export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** True for the event types a VM does not survive in place (it reboots or goes away). */
export function isShutdownEvent(type: EventType): boolean {
  return type === 'Reboot' || type === 'Redeploy' || type === 'Preempt' || type === 'Terminate';
}
