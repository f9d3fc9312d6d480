import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGuard, type Guard } from '@freezeguard/core';
import { createHttpGuard } from '@freezeguard/core/adapter';
import { MemorySource, recordingLogger } from '@freezeguard/core/testing';
import { guardExpress } from '@freezeguard/express';
import freezeguard from '@freezeguard/fastify';
import express from 'express';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { prometheusMetrics } from '../src/index.js';
import { makeGuard } from './scenario.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type Serve = (guard: Guard, options: Record<string, unknown>) => Promise<string>;

const adapters: Record<string, Serve> = {
  async express(guard, options) {
    const app = express();
    app.use(guardExpress(guard, options));
    app.get('/', (_req, res) => {
      res.send('hello');
    });
    const server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  },
  async fastify(guard, options) {
    const app = Fastify();
    await app.register(freezeguard, { guard, ...options });
    app.get('/', async () => 'hello');
    cleanups.push(() => app.close());
    return app.listen({ port: 0, host: '127.0.0.1' });
  },
};

describe.each(Object.entries(adapters))('metricsPath with %s', (_name, serve) => {
  it('serves the Prometheus text at metricsPath, also while draining with rejectWhileDraining', async () => {
    const s = makeGuard();
    // stop() resumes what the cycle prepared, once its prepare (on the fake clock) is over.
    cleanups.push(async () => {
      const stopping = s.guard.stop();
      await s.clock.advance(30_000);
      await stopping;
    });
    const registry = new Registry();
    const metrics = prometheusMetrics(s.guard, { registry });
    cleanups.push(() => metrics.close());
    const base = await serve(s.guard, {
      metricsPath: '/metrics',
      metrics,
      rejectWhileDraining: true,
    });
    await s.guard.start();

    let res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(registry.contentType);
    expect(await res.text()).toContain('freezeguard_ready 1');
    expect((await fetch(`${base}/metrics`, { method: 'HEAD' })).status).toBe(200);

    // Draining: ordinary routes are rejected, the scrape still answers.
    s.source.announce({ EventId: 'E1' });
    await s.clock.flush();
    expect(s.guard.isReady()).toBe(false);
    expect((await fetch(`${base}/`)).status).toBe(503);
    res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('freezeguard_ready 0');
    expect(text).toContain('freezeguard_state{state="preparing"} 1');
  });

  it('serves nothing at /metrics by default', async () => {
    const guard = createGuard({ source: new MemorySource({ resourceName: 'vm-1' }) });
    const base = await serve(guard, {});
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    expect((await fetch(`${base}/`)).status).toBe(200);
  });

  it('answers 503 when rendering fails', async () => {
    const logger = recordingLogger();
    const guard = createGuard({ source: new MemorySource({ resourceName: 'vm-1' }), logger });
    const metrics = {
      contentType: 'text/plain',
      metrics: () => Promise.reject(new Error('collector broke')),
    };
    const base = await serve(guard, { metricsPath: '/m', metrics });
    const res = await fetch(`${base}/m`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('metrics unavailable');
  });
});

describe('createHttpGuard metrics options', () => {
  it.each([
    [{ metricsPath: '/metrics' }, 'metrics'],
    [{ metricsPath: 'metrics', metrics: new Registry() }, 'metricsPath'],
    [{ metricsPath: '/health/ready', metrics: new Registry() }, 'metricsPath'],
  ])('rejects %o naming the option', (options, name) => {
    const guard = createGuard({ source: new MemorySource() });
    expect(() => createHttpGuard(guard, options)).toThrow(
      expect.objectContaining({
        code: 'ERR_BAD_OPTION',
        message: expect.stringContaining(`\`${name}\``),
      }),
    );
  });
});
