import { join } from 'node:path';
import { startSimulator } from '@freezeguard/simulator';
import { freePort, type RedisHandle, startRedis } from '@freezeguard/test-utils';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { examples, spawnTracked, startApp, stopAll } from '../helpers/processes.js';

// The examples serve Prometheus metrics at /metrics with FREEZEGUARD_METRICS=1 (and
// only then), and the figures follow a maintenance event announced by the emulator.

let redis: RedisHandle;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
  await stopAll();
});

async function scrape(url: string): Promise<{ status: number; text: string; type: string | null }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
}

async function until(url: string, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = (await scrape(url).catch(() => ({ text: '' }))).text;
    if (pattern.test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never matched ${pattern}; last:\n${last}`);
}

describe.each(['express-api', 'fastify-api', 'streaming'])('%s /metrics', (example) => {
  it('is served with FREEZEGUARD_METRICS=1 and follows an announced Freeze', async () => {
    const sim = await startSimulator({ resourceName: 'metrics-vm' });
    closers.push(() => sim.close());
    const env = {
      FREEZEGUARD_IMDS_ENDPOINT: sim.url,
      FREEZEGUARD_RESOURCE_NAME: sim.resourceName,
      FREEZEGUARD_DRAIN_DELAY_MS: '60000',
    };
    const app = await startApp(example, { ...env, FREEZEGUARD_METRICS: '1' }, example);
    const first = await scrape(`${app.url}/metrics`);
    expect(first.status).toBe(200);
    expect(first.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(first.text).toContain('freezeguard_ready 1');
    expect(first.text).toContain('freezeguard_state{state="idle"} 1');

    sim.schedule({ type: 'Freeze', notBeforeInMs: 30_000, durationInSeconds: 5, autoStart: false });
    const text = await until(
      `${app.url}/metrics`,
      /freezeguard_events_total\{event_type="Freeze",relevant="true"\} 1/,
    );
    await until(`${app.url}/metrics`, /freezeguard_ready 0/);
    expect(text).toContain('# TYPE freezeguard_pause_seconds histogram');

    // Without the variable: no route (another VM's name, so it is not draining).
    const plain = await startApp(
      example,
      { ...env, FREEZEGUARD_RESOURCE_NAME: 'other-vm' },
      `${example}-plain`,
    );
    expect((await scrape(`${plain.url}/metrics`)).status).toBe(404);
  }, 60_000);
});

describe('bullmq-worker /metrics', () => {
  it('is served on METRICS_PORT with FREEZEGUARD_METRICS=1', async () => {
    const sim = await startSimulator({ resourceName: 'metrics-worker' });
    closers.push(() => sim.close());
    const port = await freePort();
    spawnTracked(
      process.execPath,
      [join(examples, 'bullmq-worker', 'src', 'worker.js')],
      {
        REDIS_URL: redis.url,
        QUEUE: `metrics-${process.pid}`,
        FREEZEGUARD_IMDS_ENDPOINT: sim.url,
        FREEZEGUARD_RESOURCE_NAME: sim.resourceName,
        FREEZEGUARD_LOG_LEVEL: 'warn',
        FREEZEGUARD_METRICS: '1',
        METRICS_PORT: String(port),
      },
      'worker',
    );
    const text = await until(`http://127.0.0.1:${port}/metrics`, /freezeguard_ready 1/);
    expect(text).toContain('freezeguard_cycles_total{outcome="resumed"} 0');
  }, 60_000);
});
