// The same small JSON API on Fastify 5. FREEZEGUARD_DISABLED=1 runs it with an inert guard
// (the unguarded twin), FREEZEGUARD_MODE=observe as a dry run.
import { createGuard } from '@freezeguard/core';
import freezeguard from '@freezeguard/fastify';
import { redisFleetFromEnv } from '@freezeguard/fleet';
import { prometheusMetrics } from '@freezeguard/metrics';
import Fastify from 'fastify';

const port = Number(process.env.PORT ?? 3000);
// Fleet mode without code changes: REDIS_URL + FREEZEGUARD_FLEET_GROUP (+ FREEZEGUARD_MIN_IN_ROTATION).
const fleet = await redisFleetFromEnv();
// createGuard reads the environment table (FREEZEGUARD_MODE, FREEZEGUARD_DISABLED,
// FREEZEGUARD_LB, FREEZEGUARD_LOG_LEVEL, FREEZEGUARD_LOG_FORMAT…) itself.
const guard = createGuard(fleet ? { fleet, approve: 'fleet' } : { approve: 'solo' });
// One log format for the whole process: the guard's (FREEZEGUARD_LOG_FORMAT=json for JSON).
const app = Fastify({ logger: false });

const items = new Map([
  [1, { id: 1, name: 'kettle' }],
  [2, { id: 2, name: 'teapot' }],
]);

// FREEZEGUARD_METRICS=1: Prometheus metrics of the lifecycle at /metrics.
const metrics = process.env.FREEZEGUARD_METRICS === '1' ? prometheusMetrics(guard) : null;
await app.register(freezeguard, {
  guard,
  path: '/health',
  ...(metrics && { metricsPath: '/metrics', metrics }),
});

app.get('/api/items', async () => [...items.values()]);
app.get('/api/items/:id', async (req, reply) => {
  const item = items.get(Number(req.params.id));
  if (!item) return reply.code(404).send({ error: 'not found' });
  return item;
});
app.post('/api/items', async (req, reply) => {
  const id = items.size + 1;
  const item = { id, name: String(req.body?.name ?? 'thing') };
  items.set(id, item);
  return reply.code(201).send(item);
});
app.get('/api/slow', async (req) => {
  const ms = Number(req.query.ms ?? 200);
  await new Promise((r) => setTimeout(r, ms));
  return { waited: ms };
});

await app.listen({ port, host: '127.0.0.1' });
guard.logger.info({ port, mode: guard.status().mode }, 'fastify-api listening');
await guard.start();

// SIGTERM/SIGINT drain like a shutdown event, then Fastify closes and the process exits.
guard.handleSignals({ close: () => app.close() });
