// A BullMQ worker guarded by freezeguard. Every execution is counted per job id in the
// Redis hash `<queue>:execs`, so a run can prove that no job ran twice.
// FREEZEGUARD_DISABLED=1 runs the same worker with an inert guard (unguarded);
// FREEZEGUARD_MODE=observe is the dry run.

import { createServer } from 'node:http';
import { guardWorker } from '@freezeguard/bullmq';
import { createConsoleLogger, createGuard } from '@freezeguard/core';
import { redisFleetFromEnv } from '@freezeguard/fleet';
import { prometheusMetrics } from '@freezeguard/metrics';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const env = process.env;
const queueName = env.QUEUE ?? 'freezeguard-example';
const label = env.WORKER_LABEL ?? `worker-${process.pid}`;
const jobMs = Number(env.JOB_MS ?? 500);
// Level and format from FREEZEGUARD_LOG_LEVEL / FREEZEGUARD_LOG_FORMAT; the label tells workers apart.
const logger = createConsoleLogger({ name: label });
const connection = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  maxRetriesPerRequest: null,
});
const counters = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379');

const worker = new Worker(
  queueName,
  async (job) => {
    await counters.hincrby(`${queueName}:execs`, job.id, 1);
    await new Promise((r) => setTimeout(r, jobMs));
    return label;
  },
  {
    connection,
    concurrency: Number(env.CONCURRENCY ?? 4),
    lockDuration: Number(env.LOCK_DURATION_MS ?? 30_000),
    stalledInterval: Number(env.STALLED_INTERVAL_MS ?? 30_000),
  },
);
worker.on('failed', (job, err) => logger.warn({ jobId: job?.id, err: err.message }, 'job failed'));
worker.on('error', (err) => logger.error({ err: err.message }, 'worker error'));

// Fleet mode: FREEZEGUARD_FLEET_GROUP (+ FREEZEGUARD_MIN_IN_ROTATION) with REDIS_URL.
const fleet = await redisFleetFromEnv(env);
// approve 'solo': once its jobs are done (or their locks protected), the worker may let
// its VM freeze early; beside an API on the same VM, the VM is approved once both are ready.
const guard = createGuard({
  ...(fleet ? { fleet, approve: 'fleet' } : { approve: 'solo' }),
  // A worker takes no traffic: there is no balancer to wait for before pausing it.
  drainDelayMs: 0,
  logger,
});
guardWorker(guard, worker, { pauseTimeoutMs: Number(env.PAUSE_TIMEOUT_MS ?? 20_000) });
if (env.FREEZEGUARD_METRICS === '1') {
  // A worker has no HTTP server of its own: one just for Prometheus to scrape.
  const metrics = prometheusMetrics(guard);
  const port = Number(env.METRICS_PORT ?? 9464);
  createServer(async (req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'Content-Type': metrics.contentType }).end(await metrics.metrics());
  })
    .listen(port, '127.0.0.1', function () {
      logger.info({ port: this.address().port }, 'metrics at /metrics');
    })
    .unref();
}
await guard.start();
await worker.waitUntilReady();
logger.info({ queue: queueName, mode: guard.status().mode }, 'worker ready');

// SIGTERM/SIGINT: the worker pauses (its jobs in progress finish) like before a freeze,
// then it closes, the connections go and the process exits.
guard.handleSignals({
  close: async () => {
    await worker.close();
    connection.disconnect();
    counters.disconnect();
  },
});
