/**
 * @freezeguard/metrics — Prometheus and OpenTelemetry metrics of the freezeguard
 * maintenance lifecycle. Everything is driven by guard events: nothing runs per HTTP
 * request. Webhooks for its milestones are `@freezeguard/metrics/webhooks`.
 *
 * @example
 * ```ts
 * import { prometheusMetrics } from '@freezeguard/metrics';
 * const metrics = prometheusMetrics(guard);
 * app.use(guardExpress(guard, { metricsPath: '/metrics', metrics }));
 * ```
 *
 * @module
 */
export type { Buckets } from './observe.js';
export {
  OPENTELEMETRY_METRIC_NAMES,
  type OpenTelemetryMetricsOptions,
  openTelemetryMetrics,
} from './opentelemetry.js';
export {
  PROMETHEUS_METRIC_NAMES,
  type PrometheusMetricsHandle,
  type PrometheusMetricsOptions,
  prometheusMetrics,
} from './prometheus.js';
