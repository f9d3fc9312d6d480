/**
 * @freezeguard/core — watch cloud maintenance events and drive a prepare → freeze →
 * resume lifecycle that framework adapters plug into.
 *
 * @example
 * ```ts
 * import { createGuard } from '@freezeguard/core';
 * const guard = createGuard();
 * await guard.start();
 * ```
 *
 * @module
 */

export {
  type EventStatus,
  type EventType,
  isShutdownEvent,
  KNOWN_EVENT_TYPES,
  type KnownEventType,
  parseNotBefore,
  parseScheduledEventsDocument,
  type ScheduledEvent,
  type ScheduledEventsDocument,
} from './document.js';
export {
  BALANCER_PRESETS,
  type BalancerOption,
  type BalancerPreset,
  type BalancerProfile,
  type BalancerTimings,
  balancerFromEnv,
  balancerTimings,
  resolveBalancer,
} from './drain/balancer.js';
export {
  assertOption,
  errorSummary,
  FreezeguardError,
  type FreezeguardErrorCode,
  toError,
  withDefaults,
} from './errors.js';
export type {
  FleetContext,
  FleetCoordinator,
  FleetMemberView,
  FleetStatus,
  SlotAnswer,
} from './fleet.js';
export {
  type ApprovalPolicy,
  assertGuard,
  type CallOutcome,
  type CycleInfo,
  type CycleOutcome,
  createGuardWithSource,
  type EventReport,
  type Guard,
  type GuardEventName,
  type GuardEvents,
  type GuardOptions,
  type GuardState,
  type GuardStatus,
  type Participant,
  type ParticipantCallInfo,
  PHASES,
  type Phase,
  type PrepareContext,
  type ResumeContext,
  type ResumeWhen,
} from './guard/guard.js';
export { type AdapterHandle, registerParticipant } from './handle.js';
export {
  createHttpGuard,
  type HealthCheck,
  type HttpGuard,
  type HttpGuardOptions,
  type MetricsExposition,
  type ProbeResponse,
} from './http.js';
export { createConsoleLogger, type Logger, type LogLevel, silentLogger } from './logger.js';
export {
  type AwsInstanceEventsOptions,
  awsInstanceEvents,
  EC2_EVENT_TYPES,
} from './sources/aws.js';
export {
  type AzureScheduledEventsOptions,
  azureScheduledEvents,
  defaultImdsEndpoint,
  MIN_REQUEST_SPACING_MS,
} from './sources/azure.js';
export { chooseCloud, sourceFor } from './sources/default.js';
export {
  CLOUD_NAMES,
  type CloudName,
  classifyDmi,
  type DetectCloudOptions,
  type DmiFields,
  detectCloud,
  detectCloudSync,
} from './sources/detect.js';
export {
  defaultGcpEndpoint,
  GCE_MAINTENANCE_NOTICE_MS,
  GCE_PREEMPTION_NOTICE_MS,
  type GcpMaintenanceEventsOptions,
  gcpMaintenanceEvents,
} from './sources/gcp.js';
export type {
  MaintenanceSource,
  SourceContext,
  SourceHealth,
  TimeReferenceSample,
} from './sources/source.js';
export {
  type Clock,
  sleep,
  systemClock,
  systemTimers,
  type TimerHandle,
  type Timers,
  withTimeout,
} from './time/clock.js';
export { awaitClockSync, type ClockSyncOptions, type ClockSyncResult } from './time/clock-sync.js';
export {
  type SecondObserver,
  type WorkerObserverOptions,
  workerObserver,
} from './time/observer.js';
export {
  createPauseDetector,
  type PauseDetector,
  type PauseDetectorOptions,
  type PauseInfo,
  type PauseSignal,
} from './time/pause.js';
export {
  createReferenceTracker,
  type ReferenceFinding,
  type ReferenceTrackerOptions,
} from './time/reference.js';

import {
  type Guard,
  type GuardOptions,
  createGuardWithSource as withSource,
} from './guard/guard.js';
import { defaultSource } from './sources/default.js';

export { defaultSource } from './sources/default.js';

/**
 * Creates the process's guard. Nothing happens until `start()`. Without a `source` it
 * watches the cloud named by `FREEZEGUARD_CLOUD` (`azure`, `gcp`, `aws`), else the one
 * {@link detectCloudSync} finds, else Azure, honouring `FREEZEGUARD_IMDS_ENDPOINT`.
 *
 * @example
 * ```ts
 * import { createGuard } from '@freezeguard/core';
 *
 * const guard = createGuard({ approve: 'solo', drainDelayMs: 15_000 });
 * guard.use({ name: 'poller', phase: 'work', prepare: () => poller.stop(), resume: () => poller.start() });
 * guard.on('state', (state) => console.log('freezeguard', state));
 * await guard.start();
 * ```
 */
export function createGuard(options: GuardOptions = {}): Guard {
  return withSource({ ...options, source: options.source ?? defaultSource() });
}
