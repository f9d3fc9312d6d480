/*
 * The public face of the Azure IMDS Scheduled Events emulator: its types, the api-versions
 * it serves and Azure's minimum notices. The emulator itself is in emulator.ts.
 */
import type { CloudEmulator, FaultInput, SimRequest } from '../../types.js';

/** Event types the emulator can announce (any string is accepted, as Azure may add some). */
export type SimEventType =
  | 'Freeze'
  | 'Reboot'
  | 'Redeploy'
  | 'Preempt'
  | 'Terminate'
  | (string & {});

/** An event as the emulator holds it. */
export interface SimEvent {
  readonly EventId: string;
  readonly EventType: SimEventType;
  readonly ResourceType: 'VirtualMachine';
  readonly Resources: readonly string[];
  readonly EventStatus: 'Scheduled' | 'Started';
  /** Epoch ms; served as RFC 1123, or `""` once Started. */
  readonly notBefore: number;
  readonly Description: string;
  readonly EventSource: 'Platform' | 'User';
  readonly DurationInSeconds: number;
}

/** What `schedule()` takes. */
export interface ScheduleInput {
  readonly type: SimEventType;
  /** Notice before NotBefore, ms. Default: Azure's minimum for the type. */
  readonly notBeforeInMs?: number;
  /** `-1` unknown, `0` no impact. Default 5 for Freeze, -1 otherwise. */
  readonly durationInSeconds?: number;
  /** Default `[resourceName]`. */
  readonly resources?: readonly string[];
  readonly description?: string;
  readonly source?: 'Platform' | 'User';
  readonly eventId?: string;
  /** Become Started at NotBefore on its own, as Azure does. Default true. */
  readonly autoStart?: boolean;
  /** Leave the document this long after starting. Default: never on its own. */
  readonly completeAfterMs?: number;
}

/** Options of the Azure emulator (`startSimulator()`). */
export interface SimulatorOptions {
  /** Default 0 (a free port). */
  readonly port?: number;
  /** Default 127.0.0.1. Bind elsewhere only on purpose: the control API has no auth. */
  readonly host?: string;
  /** This VM's name (`compute/name`). Default `vm-1`. */
  readonly resourceName?: string;
  /** This VM's unique id (`compute/vmId`). Default: a new random UUID per emulator. */
  readonly vmId?: string;
  /** Requests per second before 429, as IMDS does (~5). 0 disables. Default 5. */
  readonly rateLimitPerSecond?: number;
  /** Divides notices of `schedule()` without an explicit `notBeforeInMs`. Default 1. */
  readonly timeScale?: number;
}

/** The running emulator. */
export interface Simulator extends CloudEmulator {
  readonly cloud: 'azure';
  /** IMDS base URL, e.g. `http://127.0.0.1:40123`: pass it as `FREEZEGUARD_IMDS_ENDPOINT`. */
  readonly url: string;
  readonly port: number;
  readonly resourceName: string;
  /** This VM's unique id (`compute/vmId`). */
  readonly vmId: string;
  /** `StartRequests` received, in order. */
  readonly approvals: readonly { readonly eventId: string; readonly at: number }[];
  /** Every request seen (the last 10,000). */
  readonly requests: readonly SimRequest[];
  readonly incarnation: number;
  /** Events currently in the document. */
  events(): SimEvent[];
  /** The document as the newest api-version serves it. */
  document(apiVersion?: string): { DocumentIncarnation: number; Events: Record<string, unknown>[] };
  schedule(input: ScheduleInput): SimEvent;
  /** Marks an event Started (`NotBefore` becomes `""`). */
  start(eventId: string): SimEvent;
  /** Removes an event that happened. */
  complete(eventId: string): void;
  /** Removes an event that will not happen. */
  cancel(eventId: string): void;
  fault(fault: FaultInput): void;
  clearFaults(): void;
  on(event: 'change', listener: (document: { DocumentIncarnation: number }) => void): this;
  on(event: 'approved', listener: (info: { eventId: string; at: number }) => void): this;
  on(event: 'started' | 'completed' | 'cancelled', listener: (event: SimEvent) => void): this;
  on(event: 'request', listener: (request: SimRequest) => void): this;
  off(event: string, listener: (...args: never[]) => void): this;
  close(): Promise<void>;
}

/** api-versions the emulator serves, newest first, with the fields each one has. */
export const API_VERSIONS: readonly string[] = [
  '2020-07-01',
  '2019-08-01',
  '2019-04-01',
  '2019-01-01',
  '2017-11-01',
  '2017-08-01',
  '2017-03-01',
];

/** Azure's minimum notice per event type, ms. */
export const MINIMUM_NOTICE_MS: Readonly<Record<string, number>> = {
  Freeze: 15 * 60_000,
  Reboot: 15 * 60_000,
  Redeploy: 10 * 60_000,
  Preempt: 30_000,
  Terminate: 5 * 60_000,
};

/**
 * The Description Azure gives an event of `type`.
 *
 * @example
 * ```ts
 * describeAzureEvent('Preempt'); // 'Spot virtual machine is being evicted.'
 * ```
 */
export function describeAzureEvent(type: string): string {
  switch (type) {
    case 'Freeze':
      return 'Virtual machine is being paused because of a memory-preserving Live Migration operation.';
    case 'Reboot':
      return 'Virtual machine is going to be restarted as requested by authorized user.';
    case 'Redeploy':
      return 'Virtual machine is going to be redeployed to a different host.';
    case 'Preempt':
      return 'Spot virtual machine is being evicted.';
    case 'Terminate':
      return 'Virtual machine is being deleted.';
    default:
      return 'Host server is undergoing maintenance.';
  }
}
