// A small JSON API guarded by freezeguard. FREEZEGUARD_DISABLED=1 runs the very same app
// with an inert guard (health always 200, nothing drained): the unguarded twin used for
// comparisons. FREEZEGUARD_MODE=observe is the dry run.
import { createGuard } from '@freezeguard/core';
import { guardExpress } from '@freezeguard/express';
import { redisFleetFromEnv } from '@freezeguard/fleet';
import { prometheusMetrics } from '@freezeguard/metrics';
import express from 'express';

const port = Number(process.env.PORT ?? 3000);
// Loopback by default (right on a host); a container sets HOST=0.0.0.0 so that the
// kubelet's probes and the Service reach it on the pod's address.
const host = process.env.HOST ?? '127.0.0.1';

// Fleet mode without code changes: REDIS_URL + FREEZEGUARD_FLEET_GROUP (+ FREEZEGUARD_MIN_IN_ROTATION).
const fleet = await redisFleetFromEnv();
// createGuard reads the environment table itself (FREEZEGUARD_MODE, FREEZEGUARD_DISABLED,
// FREEZEGUARD_LB, FREEZEGUARD_DRAIN_DELAY_MS, FREEZEGUARD_LOG_LEVEL, FREEZEGUARD_LOG_FORMAT…;
// options in code win), and its default logger serves the app's own lines too.
const guard = createGuard(fleet ? { fleet, approve: 'fleet' } : { approve: 'solo' });
const logger = guard.logger;
// FREEZEGUARD_METRICS=1: Prometheus metrics of the lifecycle at /metrics.
const metrics = process.env.FREEZEGUARD_METRICS === '1' ? prometheusMetrics(guard) : null;

const items = new Map([
  [1, { id: 1, name: 'kettle' }],
  [2, { id: 2, name: 'teapot' }],
]);

const app = express();
app.disable('x-powered-by');
app.use(express.json());

app.use(
  guardExpress(guard, { path: '/health', ...(metrics && { metricsPath: '/metrics', metrics }) }),
);

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
    { port: actual, mode: guard.status().mode },
    `express-api listening on http://${host}:${actual}`,
  );
  await guard.start();
});

// SIGTERM/SIGINT: readiness 503 at once, /health/live 200, the requests in flight answered,
// then the listener closes and the process exits, within FREEZEGUARD_SHUTDOWN_TIMEOUT_MS.
guard.handleSignals({ close: () => new Promise((resolve) => server.close(resolve)) });
