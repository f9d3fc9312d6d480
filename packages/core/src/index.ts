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
  createGuard,
  type EventReport,
  type Guard,
  type GuardEventName,
  type GuardEvents,
  type GuardOptions,
  type GuardState,
  type GuardStatus,
  type Participant,
  PHASES,
  type Phase,
  type PrepareContext,
  type ResumeContext,
  type ResumeWhen,
} from './guard/guard.js';
export {
  createHttpGuard,
  type HealthCheck,
  type HttpGuard,
  type HttpGuardOptions,
  type ProbeResponse,
} from './http.js';
export { createConsoleLogger, type Logger, type LogLevel, silentLogger } from './logger.js';
export {
  type AzureScheduledEventsOptions,
  azureScheduledEvents,
  defaultImdsEndpoint,
  MIN_REQUEST_SPACING_MS,
} from './sources/azure.js';
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
  createPauseDetector,
  type PauseDetectorOptions,
  type PauseInfo,
  type PauseSignal,
} from './time/pause.js';
