import { createGuard, type Guard } from '@freezeguard/core';
import type { HttpGuardOptions } from '@freezeguard/core/adapter';
import { FakeClock, MemorySource } from '@freezeguard/core/testing';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

/** A running app with the adapter under test mounted. */
export interface HarnessApp {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * What each HTTP adapter provides to run the shared contract: start a real server on
 * port 0 with the adapter mounted (with `options`) and two routes: `GET /hello` → 200
 * `hello`, and `GET /slow?ms=N` → 200 `slow` after N real milliseconds.
 */
export interface HttpAdapterHarness {
  start(guard: Guard, options: HttpGuardOptions): Promise<HarnessApp>;
}

const silent = { debug() {}, info() {}, warn() {}, error() {} };
/**
 * The contract every HTTP adapter must pass, run against real servers and a keep-alive
 * client, with the guard on a fake clock so the freeze is deterministic.
 *
 * @example
 * ```ts
 * httpAdapterContract('express 5', { start: async (guard, options) => startExpress(guard, options) });
 * ```
 */
export function httpAdapterContract(name: string, harness: HttpAdapterHarness): void {
  describe(`HTTP adapter contract: ${name}`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      while (cleanups.length) await cleanups.pop()!();
    });

    async function setup(
      options: HttpGuardOptions = {},
      guardOptions: { resumeWhen?: 'removed'; mode?: 'observe' } = {},
    ) {
      const clock = new FakeClock();
      const source = new MemorySource({ resourceName: 'vm-1' });
      const guard = createGuard({
        source,
        clock,
        timers: clock,
        logger: silent,
        resourceName: 'vm-1',
        drainDelayMs: 1000,
        ...guardOptions,
      });
      await guard.start();
      const app = await harness.start(guard, options);
      const agent = new Agent({ keepAliveTimeout: 10_000, pipelining: 1, connections: 1 });
      cleanups.push(async () => {
        await guard.stop();
        await app.close();
        await agent.close();
      });
      const get = async (path: string, method: 'GET' | 'HEAD' = 'GET') => {
        const res = await request(`${app.url}${path}`, { method, dispatcher: agent });
        const body = await res.body.text();
        return { status: res.statusCode, headers: res.headers, body };
      };
      // Lets the real event loop (sockets) and the fake one (guard) both move.
      const settle = async (ms = 20) => {
        await clock.flush();
        await new Promise((r) => setTimeout(r, ms));
        await clock.flush();
      };
      return { clock, source, guard, app, agent, get, settle };
    }

    it('serves ready and live: 200 ok, no-store; HEAD works', async () => {
      const t = await setup();
      for (const path of ['/health/ready', '/health/live']) {
        const res = await t.get(path);
        expect(res).toMatchObject({ status: 200, body: 'ok' });
        expect(res.headers['cache-control']).toBe('no-store');
        const head = await t.get(path, 'HEAD');
        expect(head).toMatchObject({ status: 200, body: '' });
      }
      expect((await t.get('/hello')).body).toBe('hello');
    });

    it('ready is 503 with Retry-After from preparing until every resume finished', async () => {
      const t = await setup();
      t.source.announce({ EventId: 'EV-HTTP' });
      await t.settle();
      expect(t.guard.state).toBe('preparing');
      const draining = await t.get('/health/ready');
      expect(draining).toMatchObject({ status: 503, body: 'draining' });
      expect(Number(draining.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect((await t.get('/health/ready', 'HEAD')).status).toBe(503);
      expect((await t.get('/health/live')).status).toBe(200);
      await t.clock.advance(1000);
      await t.settle();
      expect(t.guard.state).toBe('frozen');
      expect((await t.get('/health/ready')).status).toBe(503);
      await t.clock.stop(5000); // the freeze itself
      await t.settle();
      expect(t.guard.state).toBe('idle');
      expect(await t.get('/health/ready')).toMatchObject({ status: 200, body: 'ok' });
    });

    it("mode 'observe': probes stay 200 and keep-alive stays on through a whole Freeze", async () => {
      const t = await setup({}, { mode: 'observe' });
      const seen: { ready: number; live: number; hello: number; close: boolean }[] = [];
      const look = async () => {
        const hello = await t.get('/hello');
        seen.push({
          ready: (await t.get('/health/ready')).status,
          live: (await t.get('/health/live')).status,
          hello: hello.status,
          close: hello.headers.connection === 'close',
        });
      };
      t.source.announce({ EventId: 'EV-HTTP' });
      await t.settle();
      await look();
      await t.clock.advance(1000);
      await t.settle();
      expect(t.guard.state).toBe('frozen');
      await look();
      await t.clock.stop(5000);
      await t.settle();
      expect(t.guard.state).toBe('idle');
      await look();
      expect(seen).toEqual(Array(3).fill({ ready: 200, live: 200, hello: 200, close: false }));
      expect(t.guard.status().participants[0]!.prepare).toBeNull();
    });

    it('lets in-flight requests finish: prepare waits for them after drainUntil', async () => {
      const t = await setup();
      const slow = t.get('/slow?ms=700');
      await t.settle(100);
      t.source.announce({ EventId: 'EV-HTTP' });
      await t.settle();
      await t.clock.advance(1000); // past drainUntil: now waiting for the slow request
      await t.settle();
      expect(t.guard.state).toBe('preparing');
      const res = await slow;
      expect(res).toMatchObject({ status: 200, body: 'slow' });
      expect(res.headers.connection).toBe('close');
      for (let i = 0; i < 50 && t.guard.state === 'preparing'; i++) await t.settle();
      expect(t.guard.state).toBe('frozen');
      expect(t.guard.status().participants[0]!.prepare!.outcome).toBe('ok');
    });

    it('a keep-alive client gets Connection: close while draining and no request fails', async () => {
      const t = await setup();
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await t.get('/hello')).status);
      t.source.announce({ EventId: 'EV-HTTP' });
      await t.settle();
      for (let i = 0; i < 10; i++) {
        const res = await t.get('/hello');
        statuses.push(res.status);
        expect(res.headers.connection).toBe('close');
      }
      await t.clock.advance(1000); // prepare ends: idle keep-alive connections are closed
      await t.settle();
      for (let i = 0; i < 5; i++) statuses.push((await t.get('/hello')).status);
      expect(statuses).toEqual(Array(20).fill(200));
    });

    it('rejectWhileDraining answers 503 + Retry-After to all but the health routes', async () => {
      const t = await setup({ rejectWhileDraining: true });
      expect((await t.get('/hello')).status).toBe(200);
      t.source.announce({ EventId: 'EV-HTTP' });
      await t.settle();
      const res = await t.get('/hello');
      expect(res.status).toBe(503);
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect((await t.get('/health/ready')).body).toBe('draining');
      expect((await t.get('/health/live')).status).toBe(200);
    });

    it('checks make ready 503 when one fails or times out', async () => {
      let healthy = true;
      const t = await setup({
        checks: {
          db: () => healthy,
          cache: async () => {
            if (!healthy) throw new Error('cache down');
          },
        },
        checkTimeoutMs: 50,
      });
      expect((await t.get('/health/ready')).status).toBe(200);
      healthy = false;
      expect(await t.get('/health/ready')).toMatchObject({ status: 503, body: 'unhealthy' });
      healthy = true;
      expect((await t.get('/health/ready')).status).toBe(200);

      const hanging = await setup({
        checks: { slow: () => new Promise(() => {}) },
        checkTimeoutMs: 50,
      });
      const pending = hanging.get('/health/ready');
      await hanging.settle(50);
      await hanging.clock.advance(60);
      expect((await pending).status).toBe(503);
    });

    it('exposeStatus serves the guard status as JSON', async () => {
      const t = await setup({ exposeStatus: true });
      const res = await t.get('/health/ready');
      expect(res.headers['content-type']).toMatch(/application\/json/);
      expect(JSON.parse(res.body)).toMatchObject({
        status: 'ok',
        guard: { state: 'idle', resourceName: 'vm-1' },
      });
    });

    it('live stays 200 while prepared for an event the VM does not survive: maintenance never fails liveness', async () => {
      const t = await setup();
      t.source.announce({ EventId: 'EV-HTTP', EventType: 'Reboot', DurationInSeconds: -1 });
      await t.settle();
      await t.clock.advance(1000);
      await t.settle();
      expect(t.guard.state).toBe('shutting-down');
      expect((await t.get('/health/ready')).status).toBe(503);
      expect((await t.get('/health/live')).status).toBe(200);
    });

    it('two guards never share state', async () => {
      const a = await setup();
      const b = await setup();
      a.source.announce({ EventId: 'EV-HTTP' });
      await a.settle();
      expect((await a.get('/health/ready')).status).toBe(503);
      expect((await b.get('/health/ready')).status).toBe(200);
      expect(b.guard.status().participants).toHaveLength(1);
    });

    it('registers one traffic participant and unregisters on close', async () => {
      const t = await setup();
      expect(t.guard.status().participants.map((p) => p.phase)).toEqual(['traffic']);
      await t.get('/hello');
      await t.app.close();
      expect(t.guard.status().participants).toEqual([]);
    });

    it('honours a custom path', async () => {
      const t = await setup({ path: '/_probe/' });
      expect((await t.get('/_probe/ready')).status).toBe(200);
      expect((await t.get('/_probe/live')).status).toBe(200);
    });
  });
}
