import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGuard, type Guard } from '@freezeguard/core';
import { FakeClock, MemorySource, recordingLogger } from '@freezeguard/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type WebhookPayload, webhooks } from '../src/webhooks.js';
import { makeGuard, runCycle, T0 } from './scenario.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

interface Received {
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: WebhookPayload;
}

/** A real HTTP server on port 0 that records every POST; `hold` keeps requests unanswered. */
async function receiver(options: { status?: number; hold?: boolean } = {}) {
  const received: Received[] = [];
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      text += c;
    });
    req.on('end', () => {
      received.push({ url: req.url ?? '', headers: req.headers, body: JSON.parse(text) });
      if (options.hold) held.push(res);
      else res.writeHead(options.status ?? 200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const port = (server.address() as AddressInfo).port;
  return { received, url: `http://127.0.0.1:${port}/hooks/T0/secret` };
}

/** Waits (real time, bounded) until `check` holds. */
async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
const received = (list: readonly unknown[], n: number) => until(() => list.length >= n);

function started(guard: Guard) {
  cleanups.push(() => guard.stop());
}

describe('webhooks', () => {
  it('POSTs announced, prepared, frozen, resumed for a cycle, with a Slack text', async () => {
    const r = await receiver();
    const s = makeGuard();
    started(s.guard);
    const hooks = webhooks(s.guard, { url: r.url, headers: { authorization: 'Bearer t' } });
    cleanups.push(() => hooks.close());
    await runCycle(s);
    await hooks.settled();

    expect(r.received.map((x) => x.body.notification)).toEqual([
      'announced',
      'prepared',
      'frozen',
      'resumed',
    ]);
    for (const x of r.received) {
      expect(x.url).toBe('/hooks/T0/secret');
      expect(x.headers['content-type']).toBe('application/json');
      expect(x.headers.authorization).toBe('Bearer t');
      expect(x.body.text).toMatch(/^freezeguard vm-1: /);
      expect(x.body.resource).toBe('vm-1');
      expect(x.body.eventIds).toEqual(['EV-1']);
      expect(x.body.eventType).toBe('Freeze');
    }
    const [announced, prepared, frozen, resumed] = r.received.map((x) => x.body);
    // Only the event for this VM is announced (the Reboot of vm-2 is not).
    expect(announced).toMatchObject({
      at: new Date(T0).toISOString(),
      notBefore: new Date(T0 + 15 * 60_000).toUTCString(),
    });
    expect(announced!.text).toContain('Freeze EV-1 announced');
    expect(prepared).toMatchObject({ state: 'ready' });
    expect(frozen).toMatchObject({ state: 'frozen' });
    expect(resumed).toMatchObject({ outcome: 'resumed' });
    expect(resumed!.pausedMs).toBeGreaterThanOrEqual(4_900);
    expect(resumed!.outOfRotationMs).toBeGreaterThanOrEqual(10_000);
    expect(resumed!.text).toMatch(/back in rotation after \d+\.\d s \(paused \d+\.\d s\)/);
  });

  it('announces a shutdown and sends only the chosen events', async () => {
    const r = await receiver();
    const clock = new FakeClock({ now: T0 });
    const source = new MemorySource({ resourceName: 'vm-1' });
    const guard = createGuard({
      source,
      clock,
      timers: clock,
      resourceName: 'vm-1',
      logger: recordingLogger(),
    });
    started(guard);
    const hooks = webhooks(guard, { url: r.url, events: ['shutdown', 'resumed'] });
    await guard.start();
    source.announce({ EventId: 'R1', EventType: 'Reboot' });
    await clock.advance(60_000);
    expect(guard.state).toBe('shutting-down');
    await hooks.settled();
    expect(r.received.map((x) => x.body)).toEqual([
      expect.objectContaining({ notification: 'shutdown', eventIds: ['R1'], eventType: 'Reboot' }),
    ]);
    expect(r.received[0]!.body.text).toContain('Reboot R1: shutting down');
  });

  it('never blocks the lifecycle: an endpoint that does not answer is abandoned after timeoutMs, not retried', async () => {
    const r = await receiver({ hold: true });
    const s = makeGuard();
    started(s.guard);
    const logger = recordingLogger();
    const hooks = webhooks(s.guard, { url: r.url, timeoutMs: 2_000, logger });
    await s.guard.start();
    s.source.announce({ EventId: 'E1' }); // Started: prepares at once
    await s.clock.flush();
    expect(s.guard.state).toBe('preparing');
    await received(r.received, 1);
    expect(hooks.inFlight).toBe(1);
    await s.clock.advance(2_000);
    await until(() => hooks.inFlight === 0);
    const failed = logger.lines.filter(
      (l) => l.msg === 'freezeguard: webhook failed (not retried)',
    );
    expect(failed).toHaveLength(1);
    expect(failed[0]!.obj).toMatchObject({
      notification: 'announced',
      err: { message: 'timed out after 2000 ms' },
    });
    // The lifecycle went on while the endpoint hung: prepared, then the freeze and back.
    await s.clock.advance(5_000);
    expect(s.guard.state).toBe('frozen'); // Started event: frozen as soon as prepared
    await received(r.received, 3);
    await s.clock.stop(5_000);
    await s.clock.flush();
    expect(s.guard.state).toBe('idle');
    await received(r.received, 4);
    await s.clock.advance(2_000);
    await hooks.settled();
    // One request per milestone, never a retry; the secret path never reaches the log.
    expect(r.received.map((x) => x.body.notification)).toEqual([
      'announced',
      'prepared',
      'frozen',
      'resumed',
    ]);
    expect(
      logger.lines.filter((l) => l.msg.startsWith('freezeguard: webhook failed')),
    ).toHaveLength(4);
    expect(JSON.stringify(logger.lines)).not.toContain('secret');
  });

  it('drops what exceeds maxInFlight and logs an error status', async () => {
    const held = await receiver({ hold: true });
    const s = makeGuard();
    started(s.guard);
    const logger = recordingLogger();
    const hooks = webhooks(s.guard, { url: held.url, maxInFlight: 1, logger });
    cleanups.push(() => hooks.close());
    await s.guard.start();
    s.source.announce(
      { EventId: 'A', EventStatus: 'Scheduled' },
      { EventId: 'B', EventStatus: 'Scheduled' },
    );
    await s.clock.flush();
    expect(hooks.inFlight).toBe(1);
    expect(logger.lines.some((l) => l.msg.includes('webhook dropped'))).toBe(true);

    const failing = await receiver({ status: 500 });
    const logger2 = recordingLogger();
    const s2 = makeGuard();
    started(s2.guard);
    const h2 = webhooks(s2.guard, { url: failing.url, logger: logger2, events: ['announced'] });
    await s2.guard.start();
    s2.source.announce({ EventId: 'C', EventStatus: 'Scheduled' });
    await s2.clock.flush();
    await h2.settled();
    expect(failing.received).toHaveLength(1);
    expect(logger2.lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'freezeguard: webhook answered an error',
        obj: expect.objectContaining({ status: 500 }),
      }),
    );
  });

  it.each([
    [{ url: 'ftp://x' }, 'url'],
    [{ url: 'not a url' }, 'url'],
    [{ url: 'http://127.0.0.1/', timeoutMs: 0 }, 'timeoutMs'],
    [{ url: 'http://127.0.0.1/', events: ['paused'] }, 'events'],
    [{ url: 'http://127.0.0.1/', maxInFlight: 0 }, 'maxInFlight'],
  ])('rejects %o naming the option', (options, name) => {
    const s = makeGuard();
    expect(() => webhooks(s.guard, options as never)).toThrow(
      expect.objectContaining({
        code: 'ERR_BAD_OPTION',
        message: expect.stringContaining(`\`${name}\``),
      }),
    );
  });
});
