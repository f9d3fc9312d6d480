// Processes the benchmarks measure. `node fixtures.mjs <kind>`:
//  bare-idle | guard-idle        an idle process, with or without a guard polling IMDS at 1 Hz
//  express-bare | express-guarded | fastify-bare | fastify-guarded   minimal apps on PORT: one
//      JSON route (`/`) and the two health routes (the bare apps answer them themselves)
//  express-metrics-guarded | fastify-metrics-guarded   guarded + Prometheus metrics at /metrics
import { createGuard, silentLogger } from '@freezeguard/core';

const kind = process.argv[2];
const port = Number(process.env.PORT ?? 0);
const keepAlive = setInterval(() => {}, 60_000);
process.on('SIGTERM', () => {
  clearInterval(keepAlive);
  process.exit(0);
});

const guarded = kind.endsWith('guarded') || kind === 'guard-idle';
const guard = guarded ? createGuard({ logger: silentLogger }) : null;
const metrics =
  guard && kind.includes('-metrics-')
    ? {
        metricsPath: '/metrics',
        metrics: (await import('@freezeguard/metrics')).prometheusMetrics(guard),
      }
    : {};
const body = { hello: 'world' };
if (kind.startsWith('express')) {
  const { default: express } = await import('express');
  const { guardExpress } = await import('@freezeguard/express');
  const app = express();
  if (guard) app.use(guardExpress(guard, metrics));
  app.get('/', (_req, res) => res.json(body));
  // After the JSON route: the bare app's requests pay nothing for its health routes.
  if (!guard)
    for (const p of ['/health/ready', '/health/live']) app.get(p, (_req, res) => res.send('ok'));
  app.listen(port, '127.0.0.1');
} else if (kind.startsWith('fastify')) {
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  if (guard)
    await app.register((await import('@freezeguard/fastify')).default, { guard, ...metrics });
  else for (const p of ['/health/ready', '/health/live']) app.get(p, async () => 'ok');
  app.get('/', async () => body);
  await app.listen({ port, host: '127.0.0.1' });
}
await guard?.start();
process.stdout.write('ready\n');
