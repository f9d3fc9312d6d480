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
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
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

/** The part of an Express 4/5 application used here. */
interface AppLike {
  handle(req: IncomingMessage, res: ServerResponse, callback?: unknown): void;
  get(setting: string): unknown;
  router?: { stack: { handle: unknown }[] };
  _router?: { stack: { handle: unknown }[] };
}

/** Marks a request the app-level hook has already seen, so the middleware passes it on. */
const SEEN = Symbol('freezeguard.seen');

/**
 * Serves `{path}/ready` and `{path}/live` and drains connections while the guard
 * prepares for maintenance. Registers a `traffic` participant with the guard.
 *
 * Mount it first, at the app root (`app.use(guardExpress(guard))`): on the first request
 * it hooks the app itself, so from then on probes are answered and requests are tracked
 * before Express's router runs (no router layer per request), following the app's
 * `case sensitive routing` and `strict routing` settings. Mounted under a prefix, the probe
 * routes take that prefix.
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
  let hooked: { app: AppLike; original: AppLike['handle']; wrapper: AppLike['handle'] } | null =
    null;
  let closed = false;
  let isProbe: (url: string) => 'ready' | 'live' | 'metrics' | null = () => null;

  function reply(req: IncomingMessage, res: ServerResponse, p: ProbeResponse): void {
    res.writeHead(p.status, p.headers).end(req.method === 'HEAD' ? undefined : p.body);
  }

  /** Answers probes and rejections; tracks everything else. True when it answered. */
  function intercept(req: IncomingMessage, res: ServerResponse, url: string): boolean {
    const kind = req.method === 'GET' || req.method === 'HEAD' ? isProbe(url) : null;
    if (kind === 'metrics') {
      // Scrapes go on through a drain: never rejected, never counted in flight.
      http.scrape().then(
        (p) => reply(req, res, p),
        () => reply(req, res, { status: 503, headers: {}, body: 'error' }),
      );
      return true;
    }
    if (kind) {
      http.probe(kind).then(
        (p) => reply(req, res, p),
        () => reply(req, res, { status: 503, headers: {}, body: 'error' }),
      );
      return true;
    }
    const rejected = http.onRequest(req, res, '');
    if (rejected) {
      reply(req, res, rejected);
      return true;
    }
    return false;
  }

  function hook(req: Request): void {
    const app = req.app as unknown as AppLike;
    const server = (req.socket as { server?: Server }).server;
    if (server) {
      http.attachServer(server);
      server.once('close', () => middleware.close());
    }
    isProbe = probeMatcher(req.baseUrl, http.readyPath, http.livePath, http.metricsPath, {
      caseSensitive: Boolean(app.get('case sensitive routing')),
      strict: Boolean(app.get('strict routing')),
    });
    const original = app.handle;
    const wrapper = function freezeguardHandle(
      this: AppLike,
      req: IncomingMessage,
      res: ServerResponse,
      callback?: unknown,
    ) {
      if (closed) return original.call(this, req, res, callback);
      (req as unknown as Record<symbol, boolean>)[SEEN] = true;
      // A sub-app sees its own url; originalUrl (set by a parent router) has the whole path.
      const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '';
      if (!intercept(req, res, url)) original.call(this, req, res, callback);
    };
    hooked = { app, original, wrapper };
    app.handle = wrapper;
    // The hook does the middleware's work now: take its layer out of the router. A new
    // array, not a splice: requests being routed keep iterating the one they started with.
    // Express 4 keeps it in `_router` (its `router` getter throws); Express 5 in `router`.
    const router = app._router ?? app.router;
    if (router && Array.isArray(router.stack))
      router.stack = router.stack.filter((layer) => layer.handle !== middleware);
  }

  const middleware = ((req: Request, res: Response, next: NextFunction) => {
    if ((req as unknown as Record<symbol, boolean>)[SEEN] || closed) return next();
    if (!hooked) hook(req);
    // Inside a mounted router `req.url` lost its prefix; `originalUrl` has the whole path.
    if (!intercept(req, res, req.originalUrl)) next();
  }) as GuardExpressMiddleware;
  Object.defineProperty(middleware, 'participant', {
    value: http.participant,
    enumerable: true,
  });
  middleware.close = () => {
    if (closed) return;
    closed = true;
    http.close();
    // Unwrap only when nobody wrapped it after us; else the hook stays, inert.
    if (hooked && hooked.app.handle === hooked.wrapper) hooked.app.handle = hooked.original;
  };
  return middleware;
}

/**
 * Matches a request URL against the probe routes the way Express's router would: case
 * sensitivity and the trailing slash follow the app's settings.
 */
function probeMatcher(
  prefix: string,
  readyPath: string,
  livePath: string,
  metricsPath: string | null,
  settings: { caseSensitive: boolean; strict: boolean },
): (url: string) => 'ready' | 'live' | 'metrics' | null {
  const norm = (path: string) => {
    let p = settings.caseSensitive ? path : path.toLowerCase();
    if (!settings.strict && p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
    return p;
  };
  const ready = norm(prefix + readyPath);
  const live = norm(prefix + livePath);
  const metrics = metricsPath === null ? null : norm(prefix + metricsPath);
  const maxLength = Math.max(ready.length, live.length, metrics?.length ?? 0) + 1;
  return (url) => {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    // Most requests are not probes: rule them out on length before normalising.
    if (path.length > maxLength) return null;
    const p = norm(path);
    return p === ready ? 'ready' : p === live ? 'live' : p === metrics ? 'metrics' : null;
  };
}
