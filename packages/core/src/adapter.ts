/**
 * `@freezeguard/core/adapter` — what a framework adapter, a custom source or a fleet
 * coordinator is built from: registering a participant and its handle, option checks,
 * timeouts, error summaries, and the HTTP half shared by the Express and Fastify
 * adapters. Applications do not need it: they use `@freezeguard/core`.
 *
 * @example
 * ```ts
 * import { assertGuard, registerParticipant } from '@freezeguard/core/adapter';
 *
 * export function guardPoller(guard: Guard, poller: Poller): AdapterHandle {
 *   assertGuard(guard);
 *   return registerParticipant(guard, {
 *     name: 'poller',
 *     phase: 'work',
 *     prepare: () => poller.stop(),
 *     resume: () => poller.start(),
 *   });
 * }
 * ```
 *
 * @module
 */

// Azure's wire format, read and written at the edge (sources, relays, emulators, tools).
export {
  parseMaintenanceDocument,
  parseScheduledEventsDocument,
  type ScheduledEvent,
  type ScheduledEventsDocument,
  toScheduledEventsDocument,
} from './document.js';
export {
  assertOption,
  errorSummary,
  FREEZEGUARD_ERROR_CODES,
  toError,
  withDefaults,
} from './errors.js';
export { KNOWN_EVENT_TYPES } from './event.js';
export { assertGuard } from './guard/guard.js';
export { type AdapterHandle, registerParticipant } from './handle.js';
export {
  createHttpGuard,
  type HealthCheck,
  type HttpAnswer,
  type HttpGuard,
  type HttpGuardOptions,
  type MetricsExposition,
  type ProbeKind,
  type ProbeResponse,
  type RouteMatching,
} from './http.js';
// The types adapter signatures are written in, so an adapter can import from one place
// (the rest are the main entry's).
export type {
  Clock,
  CycleInfo,
  DrainState,
  FreezeguardErrorCode,
  Guard,
  GuardState,
  Logger,
  MaintenanceDocument,
  MaintenanceSource,
  Participant,
  PrepareContext,
  ResumeContext,
  SourceContext,
  SourceHealth,
  TimerHandle,
  Timers,
} from './index.js';
export { type VmIdentityEnv, vmIdentity } from './local/vm-id.js';
export { sleep, withTimeout } from './time/clock.js';
