import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpGuard, type HttpGuard } from '../src/adapter.js';
import { setup } from './helpers.js';

// The HTTP half on a bare node:http server: the one call per request, and the in-flight
// work found per connection when a drain begins.
describe('createHttpGuard().handle', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  async function serve(http: HttpGuard): Promise<{
    server: Server;
    get: (p: string) => Promise<{ status: number; connection?: string; body: string }>;
  }> {
    const server = createServer((req, res) => {
      const answer = http.handle(req, res);
      if (answer !== null) {
        void Promise.resolve(answer).then((p) => res.writeHead(p.status, p.headers).end(p.body));
        return;
      }
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
      setTimeout(() => res.end('done'), ms);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const agent = new Agent({ keepAliveTimeout: 10_000, connections: 4 });
    cleanups.push(async () => {
      http.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await agent.close();
    });
    return {
      server,
      async get(path) {
        const res = await request(`${url}${path}`, { dispatcher: agent });
        const body = await res.body.text();
        const connection = res.headers.connection as string | undefined;
        return { status: res.statusCode, connection, body };
      },
    };
  }

  it('answers probes itself and passes everything else on', async () => {
    const { guard } = setup();
    await guard.start();
    cleanups.push(() => guard.stop());
    const http = createHttpGuard(guard);
    const t = await serve(http);
    expect(await t.get('/health/ready')).toMatchObject({ status: 200, body: 'ok' });
    expect(await t.get('/health/live')).toMatchObject({ status: 200, body: 'ok' });
    expect(await t.get('/health/ready/')).toMatchObject({ status: 200, body: 'done' });
    expect(await t.get('/')).toMatchObject({ status: 200, body: 'done' });
    http.matchRoutes({ strict: false, caseSensitive: false });
    expect(await t.get('/Health/Ready/')).toMatchObject({ status: 200, body: 'ok' });
  });

  it('counts the responses in flight per connection; a drain begun while they run waits for them', async () => {
    const { guard, source, clock } = setup({ drainDelayMs: 1000 });
    await guard.start();
    cleanups.push(() => guard.stop());
    const http = createHttpGuard(guard);
    const t = await serve(http);
    expect(await t.get('/')).toMatchObject({ body: 'done' });
    const slow = t.get('/?ms=300');
    const other = t.get('/?ms=400');
    await new Promise((r) => setTimeout(r, 100));
    expect(http.inFlight).toBe(2);
    // Started before the drain: found on their connections when it begins.
    source.announce({ EventId: 'EV-1' });
    await clock.flush();
    expect(guard.state).toBe('preparing');
    expect(http.inFlight).toBe(2);
    await clock.advance(1000); // past drainUntil: the prepare waits for the two
    expect(guard.state).toBe('preparing');
    const [a, b] = await Promise.all([slow, other]);
    expect([a.connection, b.connection]).toEqual(['close', 'close']);
    for (let i = 0; i < 50 && guard.state === 'preparing'; i++) {
      await clock.flush();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(guard.state).toBe('frozen');
    expect(http.inFlight).toBe(0);
    expect(guard.status().participants[0]!.prepare!.outcome).toBe('ok');
  });
});
