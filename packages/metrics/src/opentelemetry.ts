import { createRequire } from 'node:module';
import { FreezeguardError, type Guard, type GuardState } from '@freezeguard/core';
import { assertGuard, assertOption } from '@freezeguard/core/adapter';
import type { Meter, ObservableResult } from '@opentelemetry/api';
import { type Buckets, DEFAULT_BUCKETS, observeGuard, STATES, sourceUp } from './observe.js';

/** Options of {@link openTelemetryMetrics}. */
export interface OpenTelemetryMetricsOptions {
  /** Default: `metrics.getMeter('freezeguard')` from `@opentelemetry/api` (the global provider). */
  readonly meter?: Meter;
  /** Explicit histogram bucket boundaries (seconds) advised to the SDK, per histogram. */
  readonly buckets?: Buckets;
}

/**
 * The OpenTelemetry instrument names. Units are separate (`s`) and counters carry no
 * `_total`, so an OpenTelemetry → Prometheus exporter yields exactly the names of
 * {@link prometheusMetrics} (`freezeguard.pause` + `s` → `freezeguard_pause_seconds`).
 * Attributes are named like the Prometheus labels for the same reason.
 */
export const OPENTELEMETRY_METRIC_NAMES = {
  state: 'freezeguard.state',
  ready: 'freezeguard.ready',
  events: 'freezeguard.events',
  cycles: 'freezeguard.cycles',
  outOfRotation: 'freezeguard.out_of_rotation',
  pause: 'freezeguard.pause',
  participantDuration: 'freezeguard.participant.duration',
  sourceErrors: 'freezeguard.source.errors',
  approvals: 'freezeguard.approvals',
  sourceUp: 'freezeguard.source.up',
} as const;

function defaultMeter(): Meter {
  // Optional peer: loaded only when no meter is given, so Prometheus-only users need not
  // install it. The API keeps its global provider under a Symbol.for key, so this copy
  // sees the provider the application registered through its own import.
  try {
    const api = createRequire(import.meta.url)(
      '@opentelemetry/api',
    ) as typeof import('@opentelemetry/api');
    return api.metrics.getMeter('freezeguard');
  } catch (err) {
    throw new FreezeguardError(
      'ERR_BAD_OPTION',
      'option `meter` is required when @opentelemetry/api is not installed (npm install @opentelemetry/api)',
      { cause: err, details: { option: 'meter' } },
    );
  }
}

/**
 * Records the guard's lifecycle as OpenTelemetry metrics (`@opentelemetry/api` ≥ 1.9):
 * the same measurements as {@link prometheusMetrics}, under OpenTelemetry names.
 * Everything is driven by guard events; the gauges are observed at collection time,
 * from values those events set (and `source.up` from `guard.status().blind`).
 *
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api';
 * import { createGuard } from '@freezeguard/core';
 * import { openTelemetryMetrics } from '@freezeguard/metrics';
 *
 * const guard = createGuard();
 * const handle = openTelemetryMetrics(guard, { meter: metrics.getMeter('my-service') });
 * // … on shutdown: handle.close();
 * ```
 */
export function openTelemetryMetrics(
  guard: Guard,
  options: OpenTelemetryMetricsOptions = {},
): { close(): void } {
  assertGuard(guard);
  const meter = options.meter ?? defaultMeter();
  assertOption(
    typeof meter?.createCounter === 'function' && typeof meter.createHistogram === 'function',
    'meter',
    'must be an OpenTelemetry Meter',
    meter,
  );
  const buckets = { ...DEFAULT_BUCKETS, ...options.buckets };
  const n = OPENTELEMETRY_METRIC_NAMES;

  const stateGauge = meter.createObservableGauge(n.state, {
    description:
      'Lifecycle state of the freezeguard guard: 1 for the current state, 0 for the others.',
  });
  const readyGauge = meter.createObservableGauge(n.ready, {
    description: 'Whether the instance takes traffic: 1 serving, 0 draining for maintenance.',
  });
  const sourceUpGauge = meter.createObservableGauge(n.sourceUp, {
    description:
      'Whether the maintenance source answers: 1 yes, 0 blind (no good answer for blindAfterMs) or no cloud detected.',
  });
  const events = meter.createCounter(n.events, {
    description: 'Maintenance events seen in the scheduled-events document, by type and relevance.',
    unit: '{event}',
  });
  const cycles = meter.createCounter(n.cycles, {
    description: 'Maintenance cycles (prepare -> resume) ended, by outcome.',
    unit: '{cycle}',
  });
  const outOfRotation = meter.createHistogram(n.outOfRotation, {
    description:
      'How long the instance was out of rotation per cycle: prepare start to ready again.',
    unit: 's',
    advice: { explicitBucketBoundaries: [...buckets.outOfRotation] },
  });
  const pause = meter.createHistogram(n.pause, {
    description:
      'Pauses the process lived through, by the signal that revealed them (stall: not a freeze).',
    unit: 's',
    advice: { explicitBucketBoundaries: [...buckets.pause] },
  });
  const participant = meter.createHistogram(n.participantDuration, {
    description: 'Duration of participant prepare/resume calls, by participant, step and outcome.',
    unit: 's',
    advice: { explicitBucketBoundaries: [...buckets.participant] },
  });
  const sourceErrors = meter.createCounter(n.sourceErrors, {
    description: 'Maintenance source failures (one per failure streak) and failed approvals.',
    unit: '{error}',
  });
  const approvals = meter.createCounter(n.approvals, {
    description: 'Events approved (StartRequests sent) by this instance.',
    unit: '{approval}',
  });

  let current: GuardState = guard.state;
  let ready = guard.isReady();
  const observeState = (result: ObservableResult) => {
    for (const s of STATES) result.observe(s === current ? 1 : 0, { state: s });
  };
  const observeReady = (result: ObservableResult) => result.observe(ready ? 1 : 0);
  // Read at collection time: blindness is a matter of the clock, not of an event.
  const observeSourceUp = (result: ObservableResult) => result.observe(sourceUp(guard));
  stateGauge.addCallback(observeState);
  readyGauge.addCallback(observeReady);
  sourceUpGauge.addCallback(observeSourceUp);

  const unsubscribe = observeGuard(guard, {
    state(state, isReady) {
      current = state;
      ready = isReady;
    },
    event(eventType, relevant) {
      events.add(1, { event_type: eventType, relevant: String(relevant) });
    },
    cycle(outcome, seconds) {
      cycles.add(1, { outcome });
      if (seconds !== null) outOfRotation.record(seconds);
    },
    pause(signal, seconds) {
      pause.record(seconds, { signal });
    },
    participant(name, step, outcome, seconds) {
      participant.record(seconds, { participant: name, step, outcome });
    },
    sourceError(code) {
      sourceErrors.add(1, { code });
    },
    approval() {
      approvals.add(1);
    },
  });

  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      stateGauge.removeCallback(observeState);
      readyGauge.removeCallback(observeReady);
      sourceUpGauge.removeCallback(observeSourceUp);
    },
  };
}
