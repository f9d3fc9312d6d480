import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { assertGuard, type Guard, type Participant } from '../guard/guard.js';
import { createDrainWatch } from './drain.js';
import { createInFlight } from './in-flight.js';
import { type HttpGuardOptions, type ProbeResponse, resolveHttpOptions } from './options.js';
import { createProbes } from './probes.js';
import { type ProbeKind, probeMatcher, type RouteMatching } from './routes.js';
import { scrape } from './scrape.js';

/**
 * What {@link HttpGuard.handle} answers instead of the application: a probe, a scrape or a
 * `rejectWhileDraining` 503. Probes with readiness checks (and scrapes) take a promise.
 *
 * @example
 * ```ts
 * const answer: HttpAnswer | null = http.handle(req, res);
 * if (answer) void Promise.resolve(answer).then((p) => res.writeHead(p.status, p.headers).end(p.body));
 * ```
 */
export type HttpAnswer = ProbeResponse | Promise<ProbeResponse>;

/**
 * The framework-independent half of an HTTP adapter: what {@link createHttpGuard} returns.
 *
 * @example
 * ```ts
 * const http: HttpGuard = createHttpGuard(guard);
 * console.log(http.readyPath, http.inFlight); // '/health/ready' 0
 * ```
 */
export interface HttpGuard {
  /**
   * The one call an adapter makes per request: `null` when the request goes on to the
   * application (tracked; `Connection: close` while draining), else the answer to send
   * instead (a probe, a scrape, or the 503 of `rejectWhileDraining`). With no maintenance
   * known it costs a few branches and allocates nothing.
   */
  handle(req: IncomingMessage, res: ServerResponse): HttpAnswer | null;
  /** How the framework matches paths, so probes answer where its routes would. */
  matchRoutes(matching: RouteMatching): void;
  /** Normalised base path, e.g. `/health`. */
  readonly path: string;
  readonly readyPath: string;
  readonly livePath: string;
  /** `metricsPath` when set, else null. */
  readonly metricsPath: string | null;
  /** True while the guard is not ready: responses carry `Connection: close`. */
  readonly draining: boolean;
  /** Requests in flight (probe and metrics routes excluded). */
  readonly inFlight: number;
  /**
   * The part of {@link HttpGuard.handle} after probe routing, for servers that route probes
   * themselves: a 503 to send instead when `rejectWhileDraining` applies, else `null`.
   * Requests to the probe paths (matched exactly, or `route` when given) pass untracked.
   */
  onRequest(req: IncomingMessage, res: ServerResponse, route?: string): ProbeResponse | null;
  /** The 503 to answer instead of a route, when `rejectWhileDraining` applies now; else null. */
  rejection(): ProbeResponse | null;
  /** Answer for `metricsPath`: 200 with the exposition, 503 when rendering failed. */
  scrape(): Promise<ProbeResponse>;
  /**
   * Answer for `{path}/ready` or `{path}/live`. Pass the request of a readiness probe: the
   * drain is confirmed by counting what each prober was answered.
   */
  probe(kind: 'ready' | 'live', req?: IncomingMessage): Promise<ProbeResponse>;
  /**
   * A server whose idle keep-alive connections are closed at the end of prepare. Servers
   * of the connections `handle()` sees are known without it.
   */
  attachServer(server: Server): void;
  /** The `traffic` participant registered with the guard. */
  readonly participant: Participant;
  /** Unregisters the participant; `handle()` passes every request on. Idempotent. */
  close(): void;
}

/**
 * The shared logic of every HTTP adapter, behind one `handle(req, res)` call: probe and
 * scrape answers, in-flight tracking per connection, `Connection: close` while draining,
 * and a `traffic` participant whose prepare waits for the load balancer (`drainUntil`),
 * then for in-flight requests to finish (or its deadline), then closes idle keep-alive
 * connections. Adapters only translate their framework's request and reply objects.
 *
 * @example
 * ```ts
 * const http = createHttpGuard(guard, { path: '/health' });
 * const server = createServer((req, res) => {
 *   const answer = http.handle(req, res);
 *   if (answer === null) return app(req, res);
 *   void Promise.resolve(answer).then((p) =>
 *     res.writeHead(p.status, p.headers).end(req.method === 'HEAD' ? undefined : p.body),
 *   );
 * });
 * ```
 */
export function createHttpGuard(guard: Guard, options: HttpGuardOptions = {}): HttpGuard {
  assertGuard(guard);
  const o = resolveHttpOptions(options);
  const logger = () => o.logger ?? guard.logger;
  const probes = createProbes(guard, o, logger);
  const inFlight = createInFlight();
  const drain = createDrainWatch(guard, inFlight, logger, o.quietMs);
  const paths = { ready: o.readyPath, live: o.livePath, metrics: o.metricsPath };
  let match: (url: string) => ProbeKind | null = probeMatcher(paths);

  // The hot path reads one flag: no maintenance known and serving.
  let quiet = guard.state === 'idle' && guard.isReady();
  const offState = guard.on('state', () => {
    const ready = guard.isReady();
    quiet = ready && guard.state === 'idle';
    if (ready) inFlight.endDrain();
    else inFlight.beginDrain();
    drain.readiness(ready);
  });

  // A request while maintenance is known: tracked, or rejected while draining.
  function duringMaintenance(res: ServerResponse): ProbeResponse | null {
    if (guard.isReady()) return null;
    // Traffic still arriving is how a balancer shows it has not let go.
    drain.arrived();
    if (o.rejectWhileDraining) {
      res.setHeader('Connection', 'close');
      return probes.draining();
    }
    inFlight.beginDrain();
    inFlight.watch(res);
    return null;
  }

  function answer(kind: ProbeKind, req: IncomingMessage, res: ServerResponse): HttpAnswer {
    inFlight.exempt(res);
    if (kind === 'metrics') return scrape(o.metrics!, logger);
    return kind === 'ready' ? ready(req) : probes.probe(kind);
  }

  // Whether the app's readiness checks passed when last run (they run only while the
  // guard is ready; a draining answer says nothing of them).
  let checksOk = true;
  async function readiness(): Promise<ProbeResponse> {
    const servingBefore = guard.isReady();
    const p = await probes.probe('ready');
    if (servingBefore) checksOk = p.status === 200;
    return p;
  }

  // Every readiness answer is counted for its prober: the drain is confirmed by them.
  async function ready(req: IncomingMessage): Promise<ProbeResponse> {
    const prober = drain.proberOf(req);
    const p = await readiness();
    drain.probed(prober, p.status === 200);
    return p;
  }

  const participant: Participant = {
    name: o.name,
    phase: 'traffic',
    prepare: drain.prepare,
    drainState: drain.state,
    healthy: () => checksOk,
  };
  const unregister = guard.use(participant);
  let closed = false;

  return {
    handle(req, res) {
      const kind = match(req.url ?? '');
      if (kind !== null && (req.method === 'GET' || req.method === 'HEAD'))
        return answer(kind, req, res);
      inFlight.see(req);
      return quiet ? null : duringMaintenance(res);
    },
    matchRoutes(matching) {
      if (!closed) match = probeMatcher(paths, matching);
    },
    path: o.base || '/',
    readyPath: o.readyPath,
    livePath: o.livePath,
    metricsPath: o.metricsPath,
    get draining() {
      return !guard.isReady();
    },
    get inFlight() {
      return inFlight.count;
    },
    participant,
    rejection: () => (o.rejectWhileDraining && !guard.isReady() ? probes.draining() : null),
    onRequest(req, res, route) {
      const url = route ?? req.url ?? '';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      if (path === o.readyPath || path === o.livePath || path === o.metricsPath) {
        inFlight.exempt(res);
        return null;
      }
      inFlight.see(req);
      return quiet ? null : duringMaintenance(res);
    },
    scrape: () => scrape(o.metrics!, logger),
    probe: (kind, req) =>
      kind === 'ready' ? (req ? ready(req) : readiness()) : probes.probe(kind),
    attachServer: (server) => inFlight.attachServer(server),
    close() {
      if (closed) return;
      closed = true;
      match = () => null;
      quiet = true;
      unregister();
      offState();
      inFlight.close();
    },
  };
}
