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
  createHttpGuard,
  type Guard,
  type HttpGuardOptions,
  type ProbeResponse,
} from '@freezeguard/core';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';

/** Options of the plugin: the guard plus the shared HTTP adapter options. */
export interface FreezeguardFastifyOptions extends Omit<HttpGuardOptions, 'logger'> {
  readonly guard: Guard;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The guard this plugin was registered with. */
    freezeguard: Guard;
  }
}

function send(reply: FastifyReply, p: ProbeResponse): FastifyReply {
  return reply.code(p.status).headers(p.headers).send(p.body);
}

const plugin: FastifyPluginAsync<FreezeguardFastifyOptions> = async (fastify, options) => {
  const { guard, ...rest } = options;
  const http = createHttpGuard(guard, { name: 'fastify', ...rest, logger: fastify.log });
  http.attachServer(fastify.server);
  fastify.decorate('freezeguard', guard);

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
  fastify.addHook('onRequest', async (request, reply) => {
    // Probes are not requests to drain (and the route config keeps any prefix right).
    if ((request.routeOptions.config as { freezeguardProbe?: boolean }).freezeguardProbe) return;
    const reject = http.onRequest(request.raw, reply.raw, '');
    if (reject) return send(reply, reject);
  });
  fastify.addHook('onClose', async () => http.close());
};

/**
 * The plugin. Registers a `traffic` participant with the guard, serves `{path}/ready`
 * and `{path}/live` (GET and HEAD), sets `Connection: close` while draining, logs
 * through `fastify.log`, and unregisters on `close()`.
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
 * await app.listen({ port: 3000 });
 * await guard.start();
 * ```
 */
export const freezeguard = fp(plugin, { name: '@freezeguard/fastify', fastify: '5.x' });
export default freezeguard;
