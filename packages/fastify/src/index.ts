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
  // Probe paths match as the router does (its options: `routerOptions`, or top-level).
  const config = fastify.initialConfig;
  const router = config.routerOptions ?? {};
  http.matchRoutes({
    prefix: fastify.prefix,
    caseSensitive: router.caseSensitive ?? config.caseSensitive ?? true,
    strict: !(router.ignoreTrailingSlash ?? config.ignoreTrailingSlash ?? false),
  });
  fastify.decorate('freezeguard', {
    guard,
    participant: http.participant,
    close: () => http.close(),
  } satisfies FastifyGuardHandle);

  // One hook for every route: probes and scrapes are answered here, everything else is
  // tracked (and rejected while draining when asked) and goes on.
  const onRequest: onRequestHookHandler = (request, reply, done) => {
    const answer = http.handle(request.raw, reply.raw);
    if (answer === null) return done();
    if (answer instanceof Promise)
      answer.then(
        (p) => send(reply, p),
        (err) => reply.send(err),
      );
    else send(reply, answer);
  };
  fastify.addHook('onRequest', onRequest);
  // Real routes, so the probe paths exist for the router (GET and HEAD, this context's
  // prefix); the hook answers them before they run, unless it was closed.
  for (const [kind, path] of [
    ['ready', http.readyPath],
    ['live', http.livePath],
  ] as const) {
    fastify.get(path, { logLevel: 'warn' }, async (_request, reply) =>
      send(reply, await http.probe(kind)),
    );
  }
  if (http.metricsPath !== null)
    fastify.get(http.metricsPath, { logLevel: 'warn' }, async (_req, reply) =>
      send(reply, await http.scrape()),
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
