/**
 * @freezeguard/core — watch cloud maintenance events and drive a prepare → freeze →
 * resume lifecycle that framework adapters plug into.
 *
 * This entry is what an application uses: `createGuard`, the sources of the three clouds,
 * the error class, loggers, clocks and the types of all of them. Adapter authors find
 * their helpers in `@freezeguard/core/adapter`, tests theirs in `@freezeguard/core/testing`.
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
  BALANCER_PRESETS,
  type BalancerOption,
  type BalancerPreset,
  type BalancerProfile,
  type BalancerTimings,
  balancerFromEnv,
  resolveBalancer,
} from './drain/balancer.js';
export {
  FreezeguardError,
  type FreezeguardErrorCode,
} from './errors.js';
export type {
  EventStatus,
  EventType,
  KnownEventType,
  MaintenanceDocument,
  MaintenanceEvent,
} from './event.js';
export type {
  FleetContext,
  FleetCoordinator,
  FleetMemberView,
  FleetStatus,
  SlotAnswer,
} from './fleet.js';
export type {
  ApprovalPolicy,
  CallOutcome,
  CycleInfo,
  CycleOutcome,
  DrainState,
  EventReport,
  Guard,
  GuardEventName,
  GuardEvents,
  GuardMode,
  GuardOptions,
  GuardState,
  GuardStatus,
  Participant,
  ParticipantCallInfo,
  Phase,
  PrepareContext,
  ResumeContext,
  ResumeWhen,
  SignalOptions,
} from './guard/guard.js';
export { type LocalCoordinatorOptions, type LocalRole, localCoordinator } from './local/index.js';
export {
  type ConsoleLoggerOptions,
  createConsoleLogger,
  type LogFn,
  type LogFormat,
  type Logger,
  type LogLevel,
  silentLogger,
} from './logger.js';
export {
  type AwsInstanceEventsOptions,
  type AwsSourceHealth,
  awsInstanceEvents,
} from './sources/aws.js';
export type { ImdsSessionHealth } from './sources/aws-token.js';
export {
  type AzureScheduledEventsOptions,
  azureScheduledEvents,
  defaultImdsEndpoint,
} from './sources/azure.js';
export { chooseCloud } from './sources/default.js';
export {
  CLOUD_NAMES,
  type CloudName,
  type DetectCloudOptions,
  detectCloud,
} from './sources/detect.js';
export {
  defaultGcpEndpoint,
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
  systemClock,
  systemTimers,
  type TimerHandle,
  type Timers,
} from './time/clock.js';
export { awaitClockSync, type ClockSyncOptions, type ClockSyncResult } from './time/clock-sync.js';
export type { PauseInfo, PauseSignal } from './time/pause.js';

import { createGuardWithSource, type Guard, type GuardOptions } from './guard/guard.js';
import { defaultSource } from './sources/default.js';

/**
 * Creates the process's guard. Nothing happens until `start()`. Without a `source` it
 * watches the cloud named by `FREEZEGUARD_CLOUD` (`azure`, `gcp`, `aws`), else the one
 * {@link detectCloud} finds, else Azure, honouring `FREEZEGUARD_IMDS_ENDPOINT`; with no
 * cloud detected and neither variable set, it polls nothing and says so once.
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
  return createGuardWithSource({ ...options, source: options.source ?? defaultSource() });
}
