import type { AddressInfo } from 'node:net';
import { createGuard } from '@freezeguard/core';
import { MemorySource } from '@freezeguard/core/testing';
import { httpAdapterContract } from '@freezeguard/test-utils';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import freezeguard, { freezeguard as named } from '../src/index.js';

httpAdapterContract('fastify 5', {
  async start(guard, options) {
    const app = Fastify();
    await app.register(freezeguard, { guard, ...options });
    app.get('/hello', async () => 'hello');
    app.get<{ Querystring: { ms?: string } }>('/slow', async (req) => {
      await new Promise((r) => setTimeout(r, Number(req.query.ms ?? 100)));
      return 'slow';
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      close: async () => {
        app.server.closeAllConnections();
        await app.close();
      },
    };
  },
});

describe('@freezeguard/fastify', () => {
  const guard = () =>
    createGuard({
      source: new MemorySource(),
      resourceName: 'vm-1',
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });

  it('is a fastify-plugin named @freezeguard/fastify for fastify 5, also a named export', () => {
    const meta = (freezeguard as unknown as Record<symbol, { name: string; fastify: string }>)[
      Symbol.for('plugin-meta')
    ];
    expect(meta).toMatchObject({ name: '@freezeguard/fastify', fastify: '5.x' });
    expect(named).toBe(freezeguard);
  });

  it('decorates app.freezeguard and honours the prefix of the context it is registered in', async () => {
    const g = guard();
    const app = Fastify();
    await app.register(
      async (api) => {
        await api.register(freezeguard, { guard: g });
        expect(api.freezeguard.guard).toBe(g);
        expect(api.freezeguard.participant).toMatchObject({ name: 'fastify', phase: 'traffic' });
      },
      { prefix: '/api' },
    );
    await app.ready();
    expect(g.status().participants.map((p) => p.name)).toContain('fastify');
    const res = await app.inject({ method: 'GET', url: '/api/health/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('ok');
    await app.close();
    expect(g.status().participants.map((p) => p.name)).not.toContain('fastify');
  });

  it('logs through fastify.log', async () => {
    const lines: string[] = [];
    const app = Fastify({
      logger: { level: 'warn', stream: { write: (line: string) => lines.push(line) } },
    });
    await app.register(freezeguard, { guard: guard(), checks: { db: () => false } });
    const res = await app.inject({ method: 'GET', url: '/health/ready' });
    expect(res.statusCode).toBe(503);
    expect(lines.some((l) => /readiness check failed/.test(l))).toBe(true);
    await app.close();
  });

  it('answers probes where the router would route them: ignoreTrailingSlash, caseSensitive', async () => {
    const app = Fastify({ routerOptions: { ignoreTrailingSlash: true, caseSensitive: false } });
    await app.register(freezeguard, { guard: guard() });
    for (const url of ['/health/ready', '/health/ready/', '/HEALTH/Live/'])
      expect((await app.inject({ method: 'GET', url })).body).toBe('ok');
    await app.close();
    const strict = Fastify();
    await strict.register(freezeguard, { guard: guard() });
    expect((await strict.inject({ method: 'GET', url: '/health/ready/' })).statusCode).toBe(404);
    await strict.close();
  });

  it('names the option it rejects', async () => {
    const app = Fastify();
    await expect(
      app.register(freezeguard, { guard: guard(), path: 'nope' }).ready(),
    ).rejects.toThrow(/`path`/);
  });
});
