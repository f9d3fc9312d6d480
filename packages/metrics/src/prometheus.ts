import type { Guard } from '@freezeguard/core';
import { assertGuard, assertOption } from '@freezeguard/core/adapter';
import { Counter, Gauge, Histogram, type Registry, register } from 'prom-client';
import {
  type Buckets,
  CYCLE_OUTCOMES,
  DEFAULT_BUCKETS,
  observeGuard,
  STATES,
  sourceUp,
} from './observe.js';

/** Options of {@link prometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /** Where the metrics are registered. Default: prom-client's global `register`. */
  readonly registry?: Registry;
  /** Histogram bucket boundaries (seconds), per histogram. */
  readonly buckets?: Buckets;
}

/** What {@link prometheusMetrics} returns. */
export interface PrometheusMetricsHandle {
  readonly registry: Registry;
  /** The registry's exposition content type (for `metricsPath` of the HTTP adapters). */
  readonly contentType: string;
  /** The registry's text exposition (every metric in it, not only freezeguard's). */
  metrics(): Promise<string>;
  /** Unsubscribes from the guard and removes the freezeguard metrics from the registry. */
  close(): void;
}

/** The Prometheus metric names, fixed: dashboards and alerts depend on them. */
export const PROMETHEUS_METRIC_NAMES = [
  'freezeguard_state',
  'freezeguard_ready',
  'freezeguard_events_total',
  'freezeguard_cycles_total',
  'freezeguard_out_of_rotation_seconds',
  'freezeguard_pause_seconds',
  'freezeguard_participant_duration_seconds',
  'freezeguard_source_errors_total',
  'freezeguard_approvals_total',
  'freezeguard_source_up',
] as const;

/**
 * Records the guard's lifecycle as Prometheus metrics (prom-client ≥ 15). Everything is
 * updated from guard events: nothing runs per HTTP request.
 *
 * @example
 * ```ts
 * import { createGuard } from '@freezeguard/core';
 * import { prometheusMetrics } from '@freezeguard/metrics';
 * import { register } from 'prom-client';
 *
 * const guard = createGuard();
 * prometheusMetrics(guard); // into prom-client's global registry
 * app.get('/metrics', async (req, res) => res.type(register.contentType).send(await register.metrics()));
 * ```
 */
export function prometheusMetrics(
  guard: Guard,
  options: PrometheusMetricsOptions = {},
): PrometheusMetricsHandle {
  assertGuard(guard);
  const registry = options.registry ?? register;
  assertOption(
    typeof registry?.registerMetric === 'function',
    'registry',
    'must be a prom-client Registry',
    registry,
  );
  const taken = PROMETHEUS_METRIC_NAMES.filter((n) => registry.getSingleMetric(n));
  assertOption(
    taken.length === 0,
    'registry',
    `already holds ${taken.join(', ')}: close() the previous handle or pass another registry`,
    taken,
  );
  const buckets = { ...DEFAULT_BUCKETS, ...options.buckets };
  const registers = [registry];

  const state = new Gauge({
    name: 'freezeguard_state',
    help: 'Lifecycle state of the freezeguard guard: 1 for the current state, 0 for the others.',
    labelNames: ['state'] as const,
    registers,
  });
  const ready = new Gauge({
    name: 'freezeguard_ready',
    help: 'Whether the instance takes traffic: 1 serving, 0 draining for maintenance.',
    registers,
  });
  const events = new Counter({
    name: 'freezeguard_events_total',
    help: 'Maintenance events seen in the scheduled-events document, by type and relevance to this VM.',
    labelNames: ['event_type', 'relevant'] as const,
    registers,
  });
  const cycles = new Counter({
    name: 'freezeguard_cycles_total',
    help: 'Maintenance cycles (prepare -> resume) ended, by outcome.',
    labelNames: ['outcome'] as const,
    registers,
  });
  const outOfRotation = new Histogram({
    name: 'freezeguard_out_of_rotation_seconds',
    help: 'How long the instance was out of rotation per cycle: prepare start to ready again.',
    buckets: [...buckets.outOfRotation],
    registers,
  });
  const pause = new Histogram({
    name: 'freezeguard_pause_seconds',
    help: 'Pauses the process lived through, by the signal that revealed them (stall: not a freeze).',
    labelNames: ['signal'] as const,
    buckets: [...buckets.pause],
    registers,
  });
  const participant = new Histogram({
    name: 'freezeguard_participant_duration_seconds',
    help: 'Duration of participant prepare/resume calls, by participant, step and outcome.',
    labelNames: ['participant', 'step', 'outcome'] as const,
    buckets: [...buckets.participant],
    registers,
  });
  const sourceErrors = new Counter({
    name: 'freezeguard_source_errors_total',
    help: 'Maintenance source failures (one per failure streak) and failed approvals, by error code.',
    labelNames: ['code'] as const,
    registers,
  });
  const approvals = new Counter({
    name: 'freezeguard_approvals_total',
    help: 'Events approved (StartRequests sent) by this instance.',
    registers,
  });
  new Gauge({
    name: 'freezeguard_source_up',
    help: 'Whether the maintenance source answers: 1 yes, 0 blind (no good answer for blindAfterMs) or no cloud detected. Readiness is unaffected.',
    registers,
    // Read at scrape time: blindness is a matter of the clock, not of an event.
    collect() {
      this.set(sourceUp(guard));
    },
  });
  // Series that exist from the start, so increase()/rate() see the first increment.
  for (const outcome of CYCLE_OUTCOMES) cycles.inc({ outcome }, 0);
  approvals.inc(0);

  const unsubscribe = observeGuard(guard, {
    state(current, isReady) {
      for (const s of STATES) state.set({ state: s }, s === current ? 1 : 0);
      ready.set(isReady ? 1 : 0);
    },
    event(eventType, relevant) {
      events.inc({ event_type: eventType, relevant: String(relevant) });
    },
    cycle(outcome, seconds) {
      cycles.inc({ outcome });
      if (seconds !== null) outOfRotation.observe(seconds);
    },
    pause(signal, seconds) {
      pause.observe({ signal }, seconds);
    },
    participant(name, step, outcome, seconds) {
      participant.observe({ participant: name, step, outcome }, seconds);
    },
    sourceError(code) {
      sourceErrors.inc({ code });
    },
    approval() {
      approvals.inc();
    },
  });

  let closed = false;
  return {
    registry,
    get contentType() {
      return registry.contentType;
    },
    metrics: () => registry.metrics(),
    close() {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const name of PROMETHEUS_METRIC_NAMES) registry.removeSingleMetric(name);
    },
  };
}
