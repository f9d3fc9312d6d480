import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { assertOption, errorSummary, withDefaults } from './errors.js';
import { assertGuard, type Guard, type Participant, type PrepareContext } from './guard/guard.js';
import type { Logger } from './logger.js';
import { sleep } from './time/clock.js';

/** A readiness check: resolve truthy (or nothing) when healthy; throw, reject or return `false` when not. */
export type HealthCheck = () => unknown;

/** Options shared by the HTTP adapters (`@freezeguard/express`, `@freezeguard/fastify`). */
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
}

/** Renders a metrics exposition: a prom-client `Registry` is one as it is. */
export interface MetricsExposition {
  readonly contentType: string;
  metrics(): Promise<string> | string;
}

/** What a probe route answers. */
export interface ProbeResponse {
  readonly status: 200 | 503;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The framework-independent half of an HTTP adapter. */
export interface HttpGuard {
  /** Normalised base path, e.g. `/health`. */
  readonly path: string;
  readonly readyPath: string;
  readonly livePath: string;
  /** True while the guard is not ready: responses carry `Connection: close`. */
  readonly draining: boolean;
  /** Requests in flight (probe routes excluded). */
  readonly inFlight: number;
  /**
   * Call at the start of every request. Returns a 503 response to send instead when
   * `rejectWhileDraining` applies, else `null` (the request proceeds, tracked).
   */
  onRequest(req: IncomingMessage, res: ServerResponse, route?: string): ProbeResponse | null;
  /** The 503 to answer instead of a route, when `rejectWhileDraining` applies now; else null. */
  rejection(): ProbeResponse | null;
  /** `metricsPath` when set, else null. */
  readonly metricsPath: string | null;
  /** Answer for `metricsPath`: 200 with the exposition, 503 when rendering failed. */
  scrape(): Promise<ProbeResponse>;
  /** Answer for `{path}/ready` or `{path}/live`. */
  probe(kind: 'ready' | 'live'): Promise<ProbeResponse>;
  /** The server whose idle keep-alive connections are closed at the end of prepare. */
  attachServer(server: Server): void;
  /** The `traffic` participant registered with the guard. */
  readonly participant: Participant;
  /** Unregisters the participant. Idempotent. */
  close(): void;
}

const DEFAULTS = {
  path: '/health',
  exposeStatus: false,
  rejectWhileDraining: false,
  checkTimeoutMs: 2000,
  name: 'http',
};

/**
 * The shared logic of every HTTP adapter: probe answers, in-flight tracking,
 * `Connection: close` while draining, and a `traffic` participant whose prepare waits for
 * the load balancer (`drainUntil`), then for in-flight requests to finish (or its
 * deadline), then closes idle keep-alive connections. Adapters only translate their
 * framework's request and reply objects.
 *
 * @example
 * ```ts
 * const http = createHttpGuard(guard, { path: '/health' });
 * server.on('request', async (req, res) => {
 *   if (req.url === http.readyPath) {
 *     const p = await http.probe('ready');
 *     res.writeHead(p.status, p.headers).end(p.body);
 *     return;
 *   }
 *   const reject = http.onRequest(req, res);
 *   if (reject) return void res.writeHead(reject.status, reject.headers).end(reject.body);
 *   handle(req, res);
 * });
 * ```
 */
export function createHttpGuard(guard: Guard, options: HttpGuardOptions = {}): HttpGuard {
  assertGuard(guard);
  const o = withDefaults(DEFAULTS, options);
  assertOption(
    typeof o.path === 'string' && o.path.startsWith('/'),
    'path',
    "must start with '/'",
    o.path,
  );
  assertOption(o.checkTimeoutMs > 0, 'checkTimeoutMs', 'must be > 0', o.checkTimeoutMs);
  const checks = Object.entries(options.checks ?? {});
  for (const [name, fn] of checks)
    assertOption(typeof fn === 'function', `checks.${name}`, 'must be a function', fn);
  const base = o.path === '/' ? '' : o.path.replace(/\/+$/, '');
  const readyPath = `${base}/ready`;
  const livePath = `${base}/live`;
  const logger = () => options.logger ?? guard.logger;
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

  const live = new Set<ServerResponse>();
  const servers = new Set<Server>();
  let zeroWaiters: (() => void)[] = [];
  let draining = false;

  const isDraining = () => !guard.isReady();
  const rejection = (): ProbeResponse | null =>
    o.rejectWhileDraining && isDraining()
      ? {
          status: 503,
          headers: {
            'Retry-After': retryAfter(),
            'Cache-Control': 'no-store',
            'Content-Type': 'text/plain; charset=utf-8',
          },
          body: 'draining',
        }
      : null;
  const retryAfter = () => {
    const at = guard.expectedResumeAt();
    const seconds = at === null ? 1 : Math.ceil((at - guard.clock.now()) / 1000);
    return String(Math.max(1, seconds));
  };

  // Marks every response not yet started: once draining, no connection is kept alive.
  function closeConnections(): void {
    for (const res of live) if (!res.headersSent) res.setHeader('Connection', 'close');
  }

  const offState = guard.on('state', () => {
    const now = isDraining();
    if (now && !draining) closeConnections();
    draining = now;
  });

  // One listener per request, on 'close' (emitted after 'finish' too): this runs on every
  // request of the app, so it stays as small as it can be.
  function release(this: ServerResponse): void {
    live.delete(this);
    if (live.size === 0 && zeroWaiters.length > 0) for (const w of zeroWaiters.splice(0)) w();
  }

  function closeIdle(): void {
    // Node closes keep-alive connections with no request in flight; busy ones close after
    // their response, which carries Connection: close.
    for (const server of servers) server.closeIdleConnections();
  }

  async function prepare(ctx: PrepareContext): Promise<void> {
    closeConnections();
    const timers = guard.timers;
    const lbWait = ctx.drainUntil - guard.clock.now();
    // The load balancer still routes to us until it has seen enough failed probes.
    if (lbWait > 0) await sleep(timers, lbWait, ctx.signal).catch(() => {});
    if (live.size > 0 && !ctx.signal.aborted) {
      logger().info({ inFlight: live.size }, 'freezeguard: waiting for in-flight requests');
      await new Promise<void>((resolve) => {
        const done = () => {
          zeroWaiters = zeroWaiters.filter((w) => w !== done);
          resolve();
        };
        zeroWaiters.push(done);
        ctx.signal.addEventListener('abort', done, { once: true });
      });
    }
    if (live.size > 0)
      logger().warn(
        { inFlight: live.size },
        'freezeguard: deadline reached with requests in flight',
      );
    closeIdle();
  }

  const participant: Participant = { name: o.name, phase: 'traffic', prepare };
  const unregister = guard.use(participant);
  let closed = false;

  async function runChecks(): Promise<Record<string, { ok: boolean; error?: string }>> {
    const results: Record<string, { ok: boolean; error?: string }> = {};
    await Promise.all(
      checks.map(async ([name, fn]) => {
        let timer: unknown;
        try {
          const value = await Promise.race([
            Promise.resolve().then(fn),
            new Promise((_, reject) => {
              timer = guard.timers.setTimeout(
                () => reject(new Error(`timed out after ${o.checkTimeoutMs} ms`)),
                o.checkTimeoutMs,
              );
            }),
          ]);
          results[name] = value === false ? { ok: false, error: 'returned false' } : { ok: true };
        } catch (err) {
          results[name] = { ok: false, error: errorSummary(err).message };
        } finally {
          if (timer !== undefined) guard.timers.clearTimeout(timer);
        }
      }),
    );
    return results;
  }

  function answer(
    ok: boolean,
    word: string,
    extra: Record<string, string>,
    json: () => unknown,
  ): ProbeResponse {
    const headers: Record<string, string> = { 'Cache-Control': 'no-store', ...extra };
    if (o.exposeStatus) {
      return {
        status: ok ? 200 : 503,
        headers: { ...headers, 'Content-Type': 'application/json; charset=utf-8' },
        body: JSON.stringify(json()),
      };
    }
    return {
      status: ok ? 200 : 503,
      headers: { ...headers, 'Content-Type': 'text/plain; charset=utf-8' },
      body: word,
    };
  }

  return {
    path: base || '/',
    readyPath,
    livePath,
    get draining() {
      return isDraining();
    },
    get inFlight() {
      return live.size;
    },
    participant,
    rejection,
    onRequest(req, res, route) {
      const url = route ?? req.url ?? '';
      const q = url.indexOf('?');
      const pathOnly = q < 0 ? url : url.slice(0, q);
      if (pathOnly === readyPath || pathOnly === livePath || pathOnly === metricsPath) return null;
      if (isDraining()) {
        res.setHeader('Connection', 'close');
        const rejected = rejection();
        if (rejected) return rejected;
      }
      live.add(res);
      res.on('close', release);
      return null;
    },
    metricsPath,
    async scrape() {
      const headers = { 'Cache-Control': 'no-store' };
      try {
        const exposition = options.metrics!;
        const body = await exposition.metrics();
        return {
          status: 200,
          headers: { ...headers, 'Content-Type': exposition.contentType },
          body,
        };
      } catch (err) {
        logger().warn({ err: errorSummary(err) }, 'freezeguard: rendering metrics failed');
        return {
          status: 503,
          headers: { ...headers, 'Content-Type': 'text/plain; charset=utf-8' },
          body: 'metrics unavailable',
        };
      }
    },
    async probe(kind) {
      if (kind === 'live') {
        const ok = guard.isLive();
        return answer(ok, ok ? 'ok' : 'shutting-down', {}, () => ({
          status: ok ? 'ok' : 'shutting-down',
          guard: guard.status(),
        }));
      }
      if (isDraining()) {
        return answer(false, 'draining', { 'Retry-After': retryAfter() }, () => ({
          status: 'draining',
          guard: guard.status(),
        }));
      }
      const results = checks.length > 0 ? await runChecks() : {};
      const failed = Object.entries(results).filter(([, r]) => !r.ok);
      if (failed.length > 0) {
        logger().warn(
          { checks: Object.fromEntries(failed) },
          'freezeguard: readiness check failed',
        );
      }
      const ok = failed.length === 0;
      return answer(ok, ok ? 'ok' : 'unhealthy', {}, () => ({
        status: ok ? 'ok' : 'unhealthy',
        checks: results,
        guard: guard.status(),
      }));
    },
    attachServer(server) {
      if (servers.has(server)) return;
      servers.add(server);
      server.once('close', () => servers.delete(server));
    },
    close() {
      if (closed) return;
      closed = true;
      unregister();
      offState();
      for (const w of zeroWaiters.splice(0)) w();
    },
  };
}
