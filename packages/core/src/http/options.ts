import { assertOption, withDefaults } from '../errors.js';
import type { Logger } from '../logger.js';

/**
 * A readiness check: resolve truthy (or nothing) when healthy; throw, reject or return `false` when not.
 *
 * @example
 * ```ts
 * const db: HealthCheck = async () => (await pool.query('select 1')).rowCount === 1;
 * ```
 */
export type HealthCheck = () => unknown;

/**
 * Options shared by the HTTP adapters (`@freezeguard/express`, `@freezeguard/fastify`).
 *
 * @example
 * ```ts
 * const options: HttpGuardOptions = { path: '/health', rejectWhileDraining: true, checkTimeoutMs: 500 };
 * ```
 */
export interface HttpGuardOptions {
  /** Base path of the probe routes: `{path}/ready`, `{path}/live`. Default `/health`. */
  readonly path?: string;
  /** Serve `guard.status()` as JSON on the probe routes. Default false (bodies say only `ok`/`draining`). */
  readonly exposeStatus?: boolean;
  /** Answer 503 + Retry-After to every other route while draining. Default false. */
  readonly rejectWhileDraining?: boolean;
  /** Extra readiness checks; any failing one makes `/ready` answer 503. */
  readonly checks?: Readonly<Record<string, HealthCheck>>;
  /** Per check. Default 2000 ms. */
  readonly checkTimeoutMs?: number;
  /** Participant name. Default `http`. */
  readonly name?: string;
  /** Logger for this adapter. Default: the guard's. */
  readonly logger?: Logger;
  /**
   * Serve `metrics` at this path (GET/HEAD), e.g. `/metrics`. Off unless set; never
   * rejected while draining, so scrapes go on through the freeze.
   */
  readonly metricsPath?: string;
  /** What `metricsPath` serves: a prom-client `Registry` or `prometheusMetrics(guard)`. */
  readonly metrics?: MetricsExposition;
  /**
   * The longest quiet period the drain asks for: once the probers let go, no ordinary
   * request for this long (under steady traffic, five mean gaps between arrivals, at least
   * 200 ms). Default 1000 ms.
   */
  readonly quietMs?: number;
}

/**
 * Renders a metrics exposition: a prom-client `Registry` is one as it is.
 *
 * @example
 * ```ts
 * const exposition: MetricsExposition = { contentType: 'text/plain', metrics: () => 'up 1\n' };
 * ```
 */
export interface MetricsExposition {
  readonly contentType: string;
  metrics(): Promise<string> | string;
}

/**
 * What a probe route (or a rejection, or a scrape) answers.
 *
 * @example
 * ```ts
 * const p: ProbeResponse = await http.probe('ready');
 * res.writeHead(p.status, p.headers).end(p.body);
 * ```
 */
export interface ProbeResponse {
  readonly status: 200 | 503;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The options with defaults merged and invariants checked: what the modules below use. */
export interface ResolvedHttpOptions {
  readonly name: string;
  readonly exposeStatus: boolean;
  readonly rejectWhileDraining: boolean;
  readonly checkTimeoutMs: number;
  readonly checks: readonly (readonly [string, HealthCheck])[];
  /** Normalised base path: `''` for `/`, else without a trailing slash. */
  readonly base: string;
  readonly readyPath: string;
  readonly livePath: string;
  readonly metricsPath: string | null;
  readonly metrics: MetricsExposition | null;
  readonly logger: Logger | undefined;
  readonly quietMs: number;
}

const DEFAULTS = {
  path: '/health',
  exposeStatus: false,
  rejectWhileDraining: false,
  checkTimeoutMs: 2000,
  name: 'http',
  quietMs: 1000,
};

/** Merges the defaults (in this one place) and names the option that breaks an invariant. */
export function resolveHttpOptions(options: HttpGuardOptions): ResolvedHttpOptions {
  const o = withDefaults(DEFAULTS, options);
  assertOption(
    typeof o.path === 'string' && o.path.startsWith('/'),
    'path',
    "must start with '/'",
    o.path,
  );
  assertOption(o.checkTimeoutMs > 0, 'checkTimeoutMs', 'must be > 0', o.checkTimeoutMs);
  assertOption(
    Number.isFinite(o.quietMs) && o.quietMs >= 0,
    'quietMs',
    'must be a number ≥ 0',
    o.quietMs,
  );
  const checks = Object.entries(options.checks ?? {});
  for (const [name, fn] of checks)
    assertOption(typeof fn === 'function', `checks.${name}`, 'must be a function', fn);
  const base = o.path === '/' ? '' : o.path.replace(/\/+$/, '');
  const readyPath = `${base}/ready`;
  const livePath = `${base}/live`;
  const metricsPath = options.metricsPath ?? null;
  if (metricsPath !== null) {
    assertOption(
      typeof metricsPath === 'string' &&
        metricsPath.startsWith('/') &&
        metricsPath !== readyPath &&
        metricsPath !== livePath,
      'metricsPath',
      "must start with '/' and differ from the probe paths",
      metricsPath,
    );
    assertOption(
      typeof options.metrics?.metrics === 'function',
      'metrics',
      'must be given with metricsPath: a prom-client Registry or prometheusMetrics(guard)',
      options.metrics,
    );
  }
  return {
    name: o.name,
    exposeStatus: o.exposeStatus,
    rejectWhileDraining: o.rejectWhileDraining,
    checkTimeoutMs: o.checkTimeoutMs,
    checks,
    base,
    readyPath,
    livePath,
    metricsPath,
    metrics: metricsPath === null ? null : options.metrics!,
    logger: options.logger,
    quietMs: o.quietMs,
  };
}
