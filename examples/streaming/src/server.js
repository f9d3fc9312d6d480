// A server-sent events feed. Event n is due at FEED_EPOCH + n × FEED_INTERVAL_MS and its
// data derives from n alone, so any instance can replay from any Last-Event-ID: a client
// handed over to another instance behind the load balancer loses nothing.
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:http';
import { createGuard } from '@freezeguard/core';
import { createHttpGuard } from '@freezeguard/core/adapter';
import { redisFleetFromEnv } from '@freezeguard/fleet';
import { prometheusMetrics } from '@freezeguard/metrics';
import { guardResponseStreams, guardWritable } from '@freezeguard/streams';

const env = process.env;
const port = Number(env.PORT ?? 3000);
const epoch = Number(env.FEED_EPOCH ?? Math.floor(Date.now() / 60_000) * 60_000);
const interval = Number(env.FEED_INTERVAL_MS ?? 100);

const currentId = () => Math.floor((Date.now() - epoch) / interval);
const frame = (id) =>
  `id: ${id}\ndata: ${JSON.stringify({ tick: id, at: epoch + id * interval })}\n\n`;

// A buffered audit log: flushed (and fsynced) before a freeze.
const audit = createWriteStream(env.AUDIT_LOG ?? 'audit.log', { flags: 'a' });

// Fleet mode without code changes: REDIS_URL + FREEZEGUARD_FLEET_GROUP (+ FREEZEGUARD_MIN_IN_ROTATION).
const fleet = await redisFleetFromEnv(env);
// createGuard reads the environment table (FREEZEGUARD_MODE, FREEZEGUARD_DISABLED — the
// unguarded twin —, FREEZEGUARD_LB, FREEZEGUARD_DRAIN_DELAY_MS, FREEZEGUARD_LOG_*…) itself.
const guard = createGuard(fleet ? { fleet, approve: 'fleet' } : { approve: 'solo' });
const logger = guard.logger;
// FREEZEGUARD_METRICS=1: Prometheus metrics of the lifecycle at /metrics.
const metrics = env.FREEZEGUARD_METRICS === '1' ? prometheusMetrics(guard) : null;
const probes = createHttpGuard(guard, {
  path: '/health',
  name: 'http',
  ...(metrics && { metricsPath: '/metrics', metrics }),
});
const streams = guardResponseStreams(guard, { retryMs: Number(env.SSE_RETRY_MS ?? 500) });
guardWritable(guard, audit, {
  name: 'audit-log',
  fsync: true,
  onResume: ({ pausedMs }) =>
    audit.write(`${new Date().toISOString()} resumed after a ${pausedMs} ms pause\n`),
});

const clients = new Map();
setInterval(() => {
  const now = currentId();
  for (const [res, state] of clients) {
    while (state.next <= now) res.write(frame(state.next++));
  }
}, interval).unref();

const server = createServer(async (req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/health/ready' || path === '/health/live') {
    const p = await probes.probe(path.endsWith('ready') ? 'ready' : 'live', req);
    res.writeHead(p.status, p.headers).end(req.method === 'HEAD' ? undefined : p.body);
    return;
  }
  if (path === probes.metricsPath) {
    const p = await probes.scrape();
    return void res.writeHead(p.status, p.headers).end(p.body);
  }
  const reject = probes.onRequest(req, res);
  if (reject) return void res.writeHead(reject.status, reject.headers).end(reject.body);
  if (path !== '/events') return void res.writeHead(404).end('not found');
  const last = Number(req.headers['last-event-id'] ?? Number.NaN);
  const start = Number.isFinite(last) ? last + 1 : currentId();
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
  audit.write(`${new Date().toISOString()} client connected from id ${start}\n`);
  const state = { next: start };
  while (state.next <= currentId()) res.write(frame(state.next++));
  clients.set(res, state);
  res.on('close', () => clients.delete(res));
  streams.track(res);
});
probes.attachServer(server);
server.listen(port, '127.0.0.1', async () => {
  const actual = server.address().port;
  logger.info(
    { port: actual, mode: guard.status().mode },
    `streaming on http://127.0.0.1:${actual}/events`,
  );
  await guard.start();
});

// SIGTERM/SIGINT: readiness 503, the streams told to reconnect elsewhere and the audit log
// flushed (the guard's shutdown drain), then the feed ends and the process exits.
guard.handleSignals({
  close: async () => {
    for (const res of clients.keys()) res.end();
    await new Promise((resolve) => audit.end(resolve));
    await new Promise((resolve) => server.close(resolve));
  },
});
