import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpGuard, type HttpGuard } from '../src/adapter.js';
import { doc, freeze, rfc1123, setup } from './helpers.js';

// The HTTP half on a bare node:http server: the one call per request, and the in-flight
// work found per connection when a drain begins.
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A node:http server whose every request goes through `http.handle()` first. */
async function serve(http: HttpGuard): Promise<{
  server: Server;
  get: (p: string, ua?: string) => Promise<{ status: number; connection?: string; body: string }>;
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
    async get(path, ua) {
      const res = await request(`${url}${path}`, {
        dispatcher: agent,
        ...(ua ? { headers: { 'user-agent': ua } } : {}),
      });
      const body = await res.body.text();
      const connection = res.headers.connection as string | undefined;
      return { status: res.statusCode, connection, body };
    },
  };
}

describe('createHttpGuard().handle', () => {
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

// Issue 20: the traffic phase and the approval wait for the balancer, not for a fixed delay.
describe('a drain the probers confirm', () => {
  async function drill(probeEveryMs: number, trafficUntilMs: number) {
    const s = setup({
      approve: 'solo',
      drainDelayMs: 60_000,
      lb: { intervalMs: 1000, unhealthyThreshold: 2 },
    });
    await s.guard.start();
    cleanups.push(() => s.guard.stop());
    const http = createHttpGuard(s.guard, { quietMs: 500 });
    const t = await serve(http);
    const get = async (path: string) => (await t.get(path, 'balancer')).status;
    // The balancer probed before: it is a known prober.
    expect(await get('/health/ready')).toBe(200);
    await s.clock.advance(probeEveryMs);
    expect(await get('/health/ready')).toBe(200);
    s.source.publish(doc([freeze({ NotBefore: rfc1123(s.clock.now() + 50_000) })]));
    await s.clock.flush();
    expect(s.guard.state).toBe('preparing');
    const began = s.clock.now();
    const failingAt: number[] = [];
    let nextProbe = began + probeEveryMs;
    while (s.clock.now() - began < 10_000 && s.source.approvals.length === 0) {
      await s.clock.advance(100);
      const t = s.clock.now() - began;
      if (t < trafficUntilMs) expect(await get('/api')).toBe(200);
      if (s.clock.now() >= nextProbe) {
        nextProbe += probeEveryMs;
        if ((await get('/health/ready')) === 503) failingAt.push(t);
      }
    }
    return { approvedAfter: s.clock.now() - began, failingAt, approvals: s.source.approvals };
  }

  it('approves once the prober received its failures and the traffic stopped, long before drainDelayMs', async () => {
    const r = await drill(1000, 2500);
    expect(r.approvals).toHaveLength(1);
    // Two failing answers (at 1 s and 2 s), then traffic until 2.5 s, then a quiet period.
    expect(r.failingAt.slice(0, 2)).toEqual([1000, 2000]);
    expect(r.approvedAfter).toBeGreaterThanOrEqual(2500 + 200);
    expect(r.approvedAfter).toBeLessThan(5000);
  });

  it('does not approve while requests keep arriving, though the prober saw its failures', async () => {
    const r = await drill(1000, 8000);
    expect(r.failingAt.length).toBeGreaterThanOrEqual(2);
    expect(r.approvedAfter).toBeGreaterThanOrEqual(8000);
  });

  it('does not approve before the prober received its second failing answer, though all is quiet', async () => {
    const r = await drill(3000, 0);
    expect(r.failingAt.slice(0, 2)).toEqual([3000, 6000]);
    expect(r.approvedAfter).toBeGreaterThanOrEqual(6000);
    expect(r.approvedAfter).toBeLessThan(7500);
  });
});
