/**
 * @freezeguard/express — readiness/liveness routes and connection draining for Express 4
 * and 5, driven by a freezeguard guard.
 *
 * @example
 * ```ts
 * import { guardExpress } from '@freezeguard/express';
 * app.use(guardExpress(guard, { path: '/health' }));
 * ```
 *
 * @module
 */
import type { Server } from 'node:http';
import { createHttpGuard, type Guard, type HttpGuardOptions } from '@freezeguard/core';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Options of {@link guardExpress}: the shared HTTP adapter options. */
export type GuardExpressOptions = HttpGuardOptions;

/** The middleware, plus `close()` to unregister it from the guard. */
export type GuardExpressMiddleware = RequestHandler & {
  /** Unregisters the traffic participant. Called for you when the HTTP server closes. */
  close(): void;
};

/**
 * Mounts `{path}/ready` and `{path}/live` and drains connections while the guard
 * prepares for maintenance. Registers a `traffic` participant with the guard.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createGuard } from '@freezeguard/core';
 * import { guardExpress } from '@freezeguard/express';
 *
 * const guard = createGuard();
 * const app = express();
 * app.use(guardExpress(guard, { path: '/health' })); // before your routes
 * app.get('/', (req, res) => res.send('hello'));
 * app.listen(3000, () => guard.start());
 * ```
 */
export function guardExpress(
  guard: Guard,
  options: GuardExpressOptions = {},
): GuardExpressMiddleware {
  const http = createHttpGuard(guard, { name: 'express', ...options });
  const seen = new WeakSet<Server>();

  const middleware = ((req: Request, res: Response, next: NextFunction) => {
    // The HTTP server is only reachable through a request's socket; learn it on first use.
    const server = (req.socket as { server?: Server }).server;
    if (server && !seen.has(server)) {
      seen.add(server);
      http.attachServer(server);
      server.once('close', () => http.close());
    }
    const route = req.path;
    if (
      (route === http.readyPath || route === http.livePath) &&
      (req.method === 'GET' || req.method === 'HEAD')
    ) {
      http.probe(route === http.readyPath ? 'ready' : 'live').then(
        (p) =>
          res
            .status(p.status)
            .set(p.headers)
            .end(req.method === 'HEAD' ? undefined : p.body),
        next,
      );
      return;
    }
    if (route === http.metricsPath && (req.method === 'GET' || req.method === 'HEAD')) {
      http.scrape().then(
        (p) =>
          res
            .status(p.status)
            .set(p.headers)
            .end(req.method === 'HEAD' ? undefined : p.body),
        next,
      );
      return;
    }
    const reject = http.onRequest(req, res, route);
    if (reject) {
      res.status(reject.status).set(reject.headers).end(reject.body);
      return;
    }
    next();
  }) as GuardExpressMiddleware;
  middleware.close = () => http.close();
  return middleware;
}
