// The HTTP half of the adapters, one module per job under ./http/: options, probes (on
// the shared timeout), scrapes, in-flight tracking per connection and the drain
// participant, probe routing; createHttpGuard puts them behind one handle(req, res).
export { createHttpGuard, type HttpAnswer, type HttpGuard } from './http/guard.js';
export type {
  HealthCheck,
  HttpGuardOptions,
  MetricsExposition,
  ProbeResponse,
} from './http/options.js';
export type { ProbeKind, RouteMatching } from './http/routes.js';
