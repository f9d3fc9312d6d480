// Processes the benchmarks measure. `node fixtures.mjs <kind>`:
//  bare-idle | guard-idle        an idle process, with or without a guard polling IMDS at 1 Hz
//  express-bare | express-guarded | fastify-bare | fastify-guarded   hello-world servers on PORT
//  express-guardonly | fastify-guardonly   a started guard but no adapter (isolates the adapter's cost)
//  express-metrics-guarded | fastify-metrics-guarded   guarded + Prometheus metrics at /metrics
import { createGuard, silentLogger } from '@freezeguard/core';

const kind = process.argv[2];
const port = Number(process.env.PORT ?? 0);
const keepAlive = setInterval(() => {}, 60_000);
process.on('SIGTERM', () => {
  clearInterval(keepAlive);
  process.exit(0);
});

const guard =
  kind.endsWith('guarded') || kind === 'guard-idle' ? createGuard({ logger: silentLogger }) : null;
const metrics =
  guard && kind.includes('-metrics-')
    ? {
        metricsPath: '/metrics',
        metrics: (await import('@freezeguard/metrics')).prometheusMetrics(guard),
      }
    : {};
if (kind.startsWith('express')) {
  const { default: express } = await import('express');
  const { guardExpress } = await import('@freezeguard/express');
  const app = express();
  if (guard && kind.endsWith('guarded')) app.use(guardExpress(guard, metrics));
  app.get('/', (_req, res) => res.send('hello'));
  app.listen(port, '127.0.0.1');
} else if (kind.startsWith('fastify')) {
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  if (guard && kind.endsWith('guarded'))
    await app.register((await import('@freezeguard/fastify')).default, { guard, ...metrics });
  app.get('/', async () => 'hello');
  await app.listen({ port, host: '127.0.0.1' });
}
await guard?.start();
process.stdout.write('ready\n');
