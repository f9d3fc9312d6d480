// A server-sent events feed. Event n is due at FEED_EPOCH + n × FEED_INTERVAL_MS and its
// data derives from n alone, so any instance can replay from any Last-Event-ID: a client
// handed over to another instance behind the load balancer loses nothing.
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:http';
import { createConsoleLogger, createGuard } from '@freezeguard/core';
import { createHttpGuard } from '@freezeguard/core/adapter';
import { redisFleetFromEnv } from '@freezeguard/fleet';
import { prometheusMetrics } from '@freezeguard/metrics';
import { guardResponseStreams, guardWritable } from '@freezeguard/streams';

const env = process.env;
const port = Number(env.PORT ?? 3000);
const epoch = Number(env.FEED_EPOCH ?? Math.floor(Date.now() / 60_000) * 60_000);
const interval = Number(env.FEED_INTERVAL_MS ?? 100);
const disabled = env.FREEZEGUARD_DISABLED === '1';
const logger = createConsoleLogger({
  level: env.FREEZEGUARD_LOG_LEVEL ?? 'info',
  name: 'streaming',
});

const currentId = () => Math.floor((Date.now() - epoch) / interval);
const frame = (id) =>
  `id: ${id}\ndata: ${JSON.stringify({ tick: id, at: epoch + id * interval })}\n\n`;

// A buffered audit log: flushed (and fsynced) before a freeze.
const audit = createWriteStream(env.AUDIT_LOG ?? 'audit.log', { flags: 'a' });

let guard = null;
let probes = null;
let streams = null;
if (!disabled) {
  // Fleet mode without code changes: REDIS_URL + FREEZEGUARD_FLEET_GROUP (+ FREEZEGUARD_MIN_IN_ROTATION).
  const fleet = await redisFleetFromEnv(env);
  guard = createGuard({
    // The environment table (FREEZEGUARD_LB, FREEZEGUARD_DRAIN_DELAY_MS…) is read by createGuard.
    ...(fleet ? { fleet, approve: 'fleet' } : { approve: 'solo' }),
    logger,
  });
  // FREEZEGUARD_METRICS=1: Prometheus metrics of the lifecycle at /metrics.
  const metrics = env.FREEZEGUARD_METRICS === '1' ? prometheusMetrics(guard) : null;
  probes = createHttpGuard(guard, {
    path: '/health',
    name: 'http',
    ...(metrics && { metricsPath: '/metrics', metrics }),
  });
  streams = guardResponseStreams(guard, { retryMs: Number(env.SSE_RETRY_MS ?? 500) });
  guardWritable(guard, audit, {
    name: 'audit-log',
    fsync: true,
    onResume: ({ pausedMs }) =>
      audit.write(`${new Date().toISOString()} resumed after a ${pausedMs} ms pause\n`),
  });
}

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
    const p = probes
      ? await probes.probe(path.endsWith('ready') ? 'ready' : 'live')
      : { status: 200, headers: {}, body: 'ok' };
    res.writeHead(p.status, p.headers).end(req.method === 'HEAD' ? undefined : p.body);
    return;
  }
  if (probes && path === probes.metricsPath) {
    const p = await probes.scrape();
    return void res.writeHead(p.status, p.headers).end(p.body);
  }
  const reject = probes?.onRequest(req, res);
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
  streams?.track(res);
});
probes?.attachServer(server);
server.listen(port, '127.0.0.1', async () => {
  const actual = server.address().port;
  logger.info(
    { port: actual, guarded: !disabled },
    `streaming on http://127.0.0.1:${actual}/events`,
  );
  await guard?.start();
});

async function shutdown() {
  await guard?.stop();
  for (const res of clients.keys()) res.end();
  audit.end();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
