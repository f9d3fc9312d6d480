// The same small JSON API on Fastify 5. FREEZEGUARD_DISABLED=1 runs it unguarded.
import { createGuard } from '@freezeguard/core';
import freezeguard from '@freezeguard/fastify';
import { redisFleetFromEnv } from '@freezeguard/fleet';
import { prometheusMetrics } from '@freezeguard/metrics';
import Fastify from 'fastify';

const port = Number(process.env.PORT ?? 3000);
const disabled = process.env.FREEZEGUARD_DISABLED === '1';
const app = Fastify({ logger: { level: process.env.FREEZEGUARD_LOG_LEVEL ?? 'info' } });

const items = new Map([
  [1, { id: 1, name: 'kettle' }],
  [2, { id: 2, name: 'teapot' }],
]);

let guard = null;
if (disabled) {
  app.get('/health/ready', async () => 'ok');
  app.get('/health/live', async () => 'ok');
} else {
  // Fleet mode without code changes: REDIS_URL + FREEZEGUARD_FLEET_GROUP (+ FREEZEGUARD_MIN_IN_ROTATION).
  const fleet = await redisFleetFromEnv();
  guard = createGuard({
    // The environment table (FREEZEGUARD_LB, FREEZEGUARD_DRAIN_DELAY_MS…) is read by createGuard.
    ...(fleet ? { fleet, approve: 'fleet' } : { approve: 'solo' }),
    logger: app.log,
  });
  // FREEZEGUARD_METRICS=1: Prometheus metrics of the lifecycle at /metrics.
  const metrics = process.env.FREEZEGUARD_METRICS === '1' ? prometheusMetrics(guard) : null;
  await app.register(freezeguard, {
    guard,
    path: '/health',
    ...(metrics && { metricsPath: '/metrics', metrics }),
  });
}

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
await guard?.start();

async function shutdown() {
  await guard?.stop();
  await app.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
