import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGuard, type Guard } from '@freezeguard/core';
import { FakeClock, MemorySource } from '@freezeguard/core/testing';
import { type HttpAdapterHarness, httpAdapterContract } from '@freezeguard/test-utils';
import express5 from 'express';
import express4 from 'express4';
import { describe, expect, it } from 'vitest';
import { guardExpress } from '../src/index.js';

type ExpressFactory = typeof express5;

function harness(express: ExpressFactory): HttpAdapterHarness {
  return {
    async start(guard, options) {
      const app = express();
      app.use(guardExpress(guard, options));
      app.get('/hello', (_req, res) => {
        res.send('hello');
      });
      app.get('/slow', (req, res) => {
        setTimeout(() => res.send('slow'), Number(req.query.ms ?? 100));
      });
      const server: Server = await new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      const { port } = server.address() as AddressInfo;
      return {
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      };
    },
  };
}

httpAdapterContract('express 5', harness(express5));
httpAdapterContract('express 4', harness(express4 as unknown as ExpressFactory));

describe('guardExpress', () => {
  it('names the option it rejects', () => {
    const guard = createGuard({ source: new MemorySource(), resourceName: 'vm-1' });
    expect(() => guardExpress(guard, { path: 'health' })).toThrow(/`path`/);
    expect(() => guardExpress({} as never)).toThrow(/`guard`/);
  });

  it('works mounted under a prefix', async () => {
    const guard = createGuard({ source: new MemorySource(), resourceName: 'vm-1' });
    const app = express5();
    app.use('/api', guardExpress(guard));
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/api/health/ready`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok');
    } finally {
      server.close();
      server.closeAllConnections();
    }
  });
});

async function listen(app: ReturnType<typeof express5>): Promise<{ server: Server; url: string }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

function stopServer(server: Server): void {
  server.close();
  server.closeAllConnections();
}

/** A guard on a fake clock, already preparing for a freeze (so `/ready` answers 503). */
async function drainingGuard(): Promise<{ guard: Guard; stop: () => Promise<void> }> {
  const clock = new FakeClock();
  const source = new MemorySource({ resourceName: 'vm-1' });
  const guard = createGuard({
    source,
    clock,
    timers: clock,
    resourceName: 'vm-1',
    drainDelayMs: 60_000,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  await guard.start();
  source.announce({ EventId: 'E', DurationInSeconds: 5 });
  for (let i = 0; i < 50 && guard.isReady(); i++) await clock.advance(100);
  expect(guard.isReady()).toBe(false);
  return { guard, stop: () => guard.stop() };
}

describe.each([
  ['express 5', express5],
  ['express 4', express4 as unknown as ExpressFactory],
])('guardExpress routing with %s', (_label, express) => {
  it('answers probes the way Express routes: trailing slash and case follow the app settings', async () => {
    const g = await drainingGuard();
    const lenient = express();
    lenient.use(guardExpress(g.guard));
    lenient.use((_req, res) => res.send('catch-all'));
    const strict = express();
    strict.set('strict routing', true);
    strict.set('case sensitive routing', true);
    strict.use(guardExpress(g.guard, { name: 'strict' }));
    strict.use((_req, res) => res.send('catch-all'));
    const a = await listen(lenient);
    const b = await listen(strict);
    try {
      for (const path of [
        '/health/ready',
        '/health/ready/',
        '/Health/Ready',
        '/HEALTH/READY/?x=1',
      ]) {
        const res = await fetch(`${a.url}${path}`);
        expect([path, res.status, await res.text()]).toEqual([path, 503, 'draining']);
      }
      for (const path of ['/health/ready/', '/Health/Ready']) {
        const res = await fetch(`${b.url}${path}`);
        expect([path, res.status, await res.text()]).toEqual([path, 200, 'catch-all']);
      }
      const exact = await fetch(`${b.url}/health/ready`);
      expect(exact.status).toBe(503);
    } finally {
      stopServer(a.server);
      stopServer(b.server);
      await g.stop();
    }
  });

  it('is one ordinary middleware: the app is left as it is; close() makes it pass requests on', async () => {
    const guard = createGuard({ source: new MemorySource(), resourceName: 'vm-1' });
    const app = express();
    const handleOf = () => (app as unknown as { handle: unknown }).handle;
    const handle = handleOf();
    const middleware = guardExpress(guard);
    app.use(middleware);
    app.get('/hello', (_req, res) => res.send('hello'));
    const { server, url } = await listen(app);
    try {
      expect(middleware.participant).toMatchObject({ name: 'express', phase: 'traffic' });
      expect(await (await fetch(`${url}/hello`)).text()).toBe('hello');
      type Stack = { stack: { handle: unknown }[] };
      const router =
        (app as unknown as { _router?: Stack })._router ??
        (app as unknown as { router: Stack }).router;
      expect(router.stack.some((l) => l.handle === middleware)).toBe(true);
      expect(handleOf()).toBe(handle);
      expect((await fetch(`${url}/health/ready`)).status).toBe(200);
      middleware.close();
      expect(handleOf()).toBe(handle);
      expect(guard.status().participants.map((p) => p.name)).not.toContain('express');
      expect((await fetch(`${url}/health/ready`)).status).toBe(404);
      expect(await (await fetch(`${url}/hello`)).text()).toBe('hello');
    } finally {
      stopServer(server);
    }
  });
});
