// guard.handleSignals(): SIGTERM drains like a shutdown event, then closes and exits.
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { installSignalHandlers } from '../src/guard/signals.js';
import { recordingLogger } from '../src/testing.js';
import { setup } from './helpers.js';

const app = fileURLToPath(new URL('./fixtures/bin/signal-app.mjs', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function startApp(env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [app], {
    env: {
      ...process.env,
      FREEZEGUARD_DRAIN_DELAY_MS: '8000',
      FREEZEGUARD_SHUTDOWN_TIMEOUT_MS: '20000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`app exited ${code}: ${stderr}`)));
  });
  return { child, port, exited, stderr: () => stderr, stdout: () => stdout };
}

describe('guard.handleSignals() in a real process', () => {
  it('SIGTERM: readiness 503 at once, liveness 200, the request in flight answered, exit 0 within the bound', async () => {
    const a = await startApp();
    expect((await get(a.port, '/health/ready')).status).toBe(200);
    const inFlight = get(a.port, '/slow?ms=1500');
    // The request has reached the app before the signal.
    for (let i = 0; i < 250 && !a.stdout().includes('"arrived"'); i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(a.stdout()).toContain('{"arrived":1500}');
    a.child.kill('SIGTERM');
    let ready = 200;
    for (let i = 0; i < 100 && ready === 200; i++) {
      ready = (await get(a.port, '/health/ready')).status;
      if (ready === 200) await new Promise((r) => setTimeout(r, 20));
    }
    expect(ready).toBe(503);
    expect((await get(a.port, '/health/live')).status).toBe(200);
    expect(await inFlight).toEqual({ status: 200, body: 'waited 1500' });
    // The bound (FREEZEGUARD_SHUTDOWN_TIMEOUT_MS, 20 s) exits 1: 0 says it drained and closed before it.
    expect(await a.exited).toBe(0);
    expect(a.stderr()).toContain('freezeguard: signal received: draining, then exiting');
    expect(a.stderr()).toContain('freezeguard: drained and closed; exiting');
  });

  it('exits 1 when the drain outlasts the bound', async () => {
    // Nothing probes readiness, so the drain waits the whole 8 s delay; the bound is 300 ms.
    const a = await startApp({ FREEZEGUARD_SHUTDOWN_TIMEOUT_MS: '300' });
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(1);
    expect(a.stderr()).toContain('freezeguard: shutdown did not finish within 300 ms; exiting');
  });
});

describe('installSignalHandlers', () => {
  it('drains a started guard, closes, stops, exits 0; a second signal exits 1 at once; the disposer removes the handlers', async () => {
    const s = setup();
    await s.guard.start();
    const order: string[] = [];
    const codes: number[] = [];
    const before = process.listenerCount('SIGTERM');
    const dispose = s.guard.handleSignals({
      close: () => void order.push('close'),
      exit: (code) => codes.push(code),
    });
    // Installed once.
    expect(s.guard.handleSignals()).toBe(dispose);
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    s.guard.on('state', (state) => order.push(state));
    process.emit('SIGTERM', 'SIGTERM');
    expect(s.guard.isReady()).toBe(false);
    expect(s.guard.isLive()).toBe(true);
    process.emit('SIGINT', 'SIGINT');
    expect(codes).toEqual([1]);
    await s.clock.advance(10_000);
    await s.clock.flush();
    expect(order).toEqual(['preparing', 'shutting-down', 'close']);
    expect(codes).toEqual([1]); // exit runs once
    dispose();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });

  it('a disabled guard closes and exits 0 without draining', async () => {
    const s = setup({ mode: 'disabled' });
    await s.guard.start();
    const codes: number[] = [];
    const closed: string[] = [];
    const dispose = s.guard.handleSignals({
      close: () => void closed.push('close'),
      exit: (code) => codes.push(code),
    });
    try {
      process.emit('SIGTERM', 'SIGTERM');
      for (let i = 0; i < 20 && codes.length === 0; i++) await Promise.resolve();
      expect(closed).toEqual(['close']);
      expect(codes).toEqual([0]);
      expect(s.guard.isReady()).toBe(true);
    } finally {
      dispose();
    }
  });

  it('an invalid FREEZEGUARD_SHUTDOWN_TIMEOUT_MS fails naming the variable', () => {
    const s = setup();
    process.env.FREEZEGUARD_SHUTDOWN_TIMEOUT_MS = 'soon';
    try {
      expect(() => s.guard.handleSignals()).toThrow(/FREEZEGUARD_SHUTDOWN_TIMEOUT_MS/);
    } finally {
      delete process.env.FREEZEGUARD_SHUTDOWN_TIMEOUT_MS;
    }
  });

  it('checks its options', () => {
    const logger = recordingLogger();
    const target = { logger, timers: setup().clock, status: () => ({ running: false }) };
    const g = { ...target, shutdown: async () => {}, stop: async () => {} };
    expect(() => installSignalHandlers(g, { timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});
