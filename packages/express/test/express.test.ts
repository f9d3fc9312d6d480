import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGuard } from '@freezeguard/core';
import { MemorySource } from '@freezeguard/core/testing';
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
