// A small JSON API guarded by freezeguard. FREEZEGUARD_DISABLED=1 runs the very same app
// with health always 200 and no guard: the unguarded twin used for comparisons.
import { createConsoleLogger, createGuard } from '@freezeguard/core';
import { guardExpress } from '@freezeguard/express';
import { redisFleetFromEnv } from '@freezeguard/fleet';
import { prometheusMetrics } from '@freezeguard/metrics';
import express from 'express';

const port = Number(process.env.PORT ?? 3000);
// Loopback by default (right on a host); a container sets HOST=0.0.0.0 so that the
// kubelet's probes and the Service reach it on the pod's address.
const host = process.env.HOST ?? '127.0.0.1';
const disabled = process.env.FREEZEGUARD_DISABLED === '1';
const logger = createConsoleLogger({
  level: process.env.FREEZEGUARD_LOG_LEVEL ?? 'info',
  name: 'express-api',
});

const items = new Map([
  [1, { id: 1, name: 'kettle' }],
  [2, { id: 2, name: 'teapot' }],
]);

const app = express();
app.disable('x-powered-by');
app.use(express.json());

let guard = null;
if (disabled) {
  app.get('/health/ready', (_req, res) => res.type('text').send('ok'));
  app.get('/health/live', (_req, res) => res.type('text').send('ok'));
} else {
  // Fleet mode without code changes: REDIS_URL + FREEZEGUARD_FLEET_GROUP (+ FREEZEGUARD_MIN_IN_ROTATION).
  const fleet = await redisFleetFromEnv();
  guard = createGuard({
    // FREEZEGUARD_LB, FREEZEGUARD_DRAIN_DELAY_MS and the rest of the environment table are
    // read by createGuard itself (options in code win).
    ...(fleet ? { fleet, approve: 'fleet' } : { approve: 'solo' }),
    logger,
  });
  // FREEZEGUARD_METRICS=1: Prometheus metrics of the lifecycle at /metrics.
  const metrics = process.env.FREEZEGUARD_METRICS === '1' ? prometheusMetrics(guard) : null;
  app.use(
    guardExpress(guard, { path: '/health', ...(metrics && { metricsPath: '/metrics', metrics }) }),
  );
}

app.get('/api/items', (_req, res) => res.json([...items.values()]));
app.get('/api/items/:id', (req, res) => {
  const item = items.get(Number(req.params.id));
  if (!item) return res.status(404).json({ error: 'not found' });
  res.json(item);
});
app.post('/api/items', (req, res) => {
  const id = items.size + 1;
  const item = { id, name: String(req.body?.name ?? 'thing') };
  items.set(id, item);
  res.status(201).json(item);
});
app.get('/api/slow', (req, res) => {
  setTimeout(() => res.json({ waited: Number(req.query.ms ?? 200) }), Number(req.query.ms ?? 200));
});

const server = app.listen(port, host, async () => {
  const actual = server.address().port;
  logger.info(
    { port: actual, guarded: !disabled },
    `express-api listening on http://${host}:${actual}`,
  );
  await guard?.start();
});

async function shutdown() {
  await guard?.stop();
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
