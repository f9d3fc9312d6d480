/**
 * @freezeguard/fastify — a Fastify 5 plugin serving readiness/liveness routes and
 * draining connections while a freezeguard guard prepares for maintenance.
 *
 * @example
 * ```ts
 * import freezeguard from '@freezeguard/fastify';
 * await app.register(freezeguard, { guard, path: '/health' });
 * ```
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AdapterHandle,
  createHttpGuard,
  type Guard,
  type HttpGuardOptions,
  type ProbeResponse,
} from '@freezeguard/core/adapter';
import type { FastifyPluginAsync, FastifyReply, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';

/** Options of the plugin: the guard plus the shared HTTP adapter options. */
export interface FreezeguardFastifyOptions extends Omit<HttpGuardOptions, 'logger'> {
  readonly guard: Guard;
}

/** `app.freezeguard`: every adapter's handle, plus the guard the plugin was registered with. */
export interface FastifyGuardHandle extends AdapterHandle {
  readonly guard: Guard;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The plugin's handle: `guard`, `participant`, `close()`. */
    freezeguard: FastifyGuardHandle;
  }
}

function send(reply: FastifyReply, p: ProbeResponse): FastifyReply {
  return reply.code(p.status).headers(p.headers).send(p.body);
}

const plugin: FastifyPluginAsync<FreezeguardFastifyOptions> = async (fastify, options) => {
  const { guard, ...rest } = options;
  const http = createHttpGuard(guard, { name: 'fastify', ...rest, logger: fastify.log });
  http.attachServer(fastify.server);
  const handle: FastifyGuardHandle = {
    guard,
    participant: http.participant,
    close: () => http.close(),
  };
  fastify.decorate('freezeguard', handle);

  // In-flight tracking and Connection: close work on the raw request, in a listener of the
  // server's own 'request' event: no Fastify hook on the hot path. Only
  // rejectWhileDraining, which must answer instead of the route, needs a hook.
  const probeUrls = new Set<string>();
  const track = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    if (!probeUrls.has(q < 0 ? url : url.slice(0, q))) http.onRequest(req, res, '');
  };
  fastify.server.prependListener('request', track);
  fastify.addHook('onClose', async () => {
    fastify.server.off('request', track);
  });
  const reject: onRequestHookHandler = (_request, reply, done) => {
    const rejected = http.rejection();
    if (!rejected) return done();
    send(reply, rejected);
  };
  fastify.addHook('onRoute', (route) => {
    if ((route.config as { freezeguardProbe?: boolean } | undefined)?.freezeguardProbe) {
      probeUrls.add(route.url);
      return;
    }
    if (!options.rejectWhileDraining) return;
    const existing = route.onRequest;
    route.onRequest =
      existing === undefined
        ? [reject]
        : [reject, ...(Array.isArray(existing) ? existing : [existing])];
  });
  for (const [kind, path] of [
    ['ready', http.readyPath],
    ['live', http.livePath],
  ] as const) {
    fastify.get(
      path,
      { logLevel: 'warn', config: { freezeguardProbe: true } },
      async (_request, reply) => send(reply, await http.probe(kind)),
    );
  }
  if (http.metricsPath !== null)
    fastify.get(
      http.metricsPath,
      { logLevel: 'warn', config: { freezeguardProbe: true } },
      async (_req, reply) => send(reply, await http.scrape()),
    );
  fastify.addHook('onClose', async () => http.close());
};

/**
 * The plugin. Registers a `traffic` participant with the guard, serves `{path}/ready`
 * and `{path}/live` (GET and HEAD), sets `Connection: close` while draining, logs
 * through `fastify.log`, and unregisters when the app closes (or on `app.freezeguard.close()`).
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createGuard } from '@freezeguard/core';
 * import freezeguard from '@freezeguard/fastify';
 *
 * const guard = createGuard();
 * const app = Fastify({ logger: true });
 * await app.register(freezeguard, { guard, path: '/health' });
 * app.get('/', async () => 'hello');
 * await app.listen({ port: Number(process.env.PORT ?? 3000) });
 * await guard.start();
 * ```
 */
export const freezeguard = fp(plugin, { name: '@freezeguard/fastify', fastify: '5.x' });
export default freezeguard;
