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
import type { Server, ServerResponse } from 'node:http';
import {
  type AdapterHandle,
  createHttpGuard,
  type Guard,
  type HttpGuardOptions,
  type ProbeResponse,
} from '@freezeguard/core/adapter';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Options of {@link guardExpress}: the shared HTTP adapter options. */
export type GuardExpressOptions = HttpGuardOptions;

/** The middleware, with the members of every adapter's handle (`participant`, `close()`). */
export type GuardExpressMiddleware = RequestHandler & AdapterHandle;

/**
 * Serves `{path}/ready` and `{path}/live` and drains connections while the guard
 * prepares for maintenance. Registers a `traffic` participant with the guard.
 *
 * One ordinary middleware: mount it first (`app.use(guardExpress(guard))`), so probes are
 * answered before your routes and every request is seen. Probe paths follow the app's
 * `case sensitive routing` and `strict routing` settings; mounted under a prefix, the
 * probe routes take that prefix.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createGuard } from '@freezeguard/core';
 * import { guardExpress } from '@freezeguard/express';
 *
 * const guard = createGuard();
 * const app = express();
 * app.use(guardExpress(guard, { path: '/health' })); // first, before your routes
 * app.get('/', (req, res) => res.send('hello'));
 * app.listen(Number(process.env.PORT ?? 3000), () => guard.start());
 * ```
 */
export function guardExpress(
  guard: Guard,
  options: GuardExpressOptions = {},
): GuardExpressMiddleware {
  const http = createHttpGuard(guard, { name: 'express', ...options });
  let routed = false;

  function reply(req: Request, res: ServerResponse, p: ProbeResponse): void {
    res.writeHead(p.status, p.headers).end(req.method === 'HEAD' ? undefined : p.body);
  }
  const failed: ProbeResponse = { status: 503, headers: {}, body: 'error' };

  const middleware = ((req: Request, res: Response, next: NextFunction) => {
    if (!routed) {
      // The app's settings and server are known once it serves: match probes the way its
      // router does, and leave the lifecycle when the server closes.
      routed = true;
      http.matchRoutes({
        caseSensitive: Boolean(req.app.get('case sensitive routing')),
        strict: Boolean(req.app.get('strict routing')),
      });
      (req.socket as { server?: Server }).server?.once('close', () => http.close());
    }
    // Inside a mounted router `req.url` has lost the mount path: probes are relative to it.
    const answer = http.handle(req, res);
    if (answer === null) return next();
    if (answer instanceof Promise)
      answer.then(
        (p) => reply(req, res, p),
        () => reply(req, res, failed),
      );
    else reply(req, res, answer);
  }) as GuardExpressMiddleware;
  Object.defineProperty(middleware, 'participant', {
    value: http.participant,
    enumerable: true,
  });
  middleware.close = () => http.close();
  return middleware;
}
