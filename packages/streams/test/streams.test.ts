import { createWriteStream, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, get, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createGzip, gunzipSync } from 'node:zlib';
import { createGuard, type Guard, silentLogger } from '@freezeguard/core';
import { MemorySource } from '@freezeguard/core/testing';
import { sseClient, until, wait } from '@freezeguard/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { guardFlushable, guardResponseStreams, guardWritable } from '../src/index.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
async function makeGuard(extra: Parameters<typeof createGuard>[0] = {}) {
  const source = new MemorySource({ resourceName: 'vm-1' });
  const guard = createGuard({
    source,
    resourceName: 'vm-1',
    drainDelayMs: 0,
    resumeWhen: 'removed',
    logger: silentLogger,
    ...extra,
  });
  await guard.start();
  cleanups.push(() => guard.stop());
  return { guard, source };
}

async function tmp() {
  const dir = await mkdtemp(join(tmpdir(), 'fg-streams-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Bytes the kernel still holds for a loopback connection (sender's send queue plus
 * receiver's receive queue), from /proc/net/tcp: once our process has handed bytes to the
 * kernel they survive a freeze (memory is kept) and reach the peer after it.
 */
async function kernelQueued(localPort: number): Promise<number> {
  const text = await readFile('/proc/net/tcp', 'utf8');
  let total = 0;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const local = Number.parseInt(f[1]!.split(':')[1]!, 16);
    const remote = Number.parseInt(f[2]!.split(':')[1]!, 16);
    if (local !== localPort && remote !== localPort) continue;
    const [tx, rx] = f[4]!.split(':').map((h) => Number.parseInt(h, 16));
    total += local === localPort ? tx! : rx!;
  }
  return total;
}

/** A TCP peer that reads slowly, so the writer sees backpressure. */
async function slowPeer() {
  let received = 0;
  let peerSocket: Socket | undefined;
  const server = createNetServer((socket: Socket) => {
    peerSocket = socket;
    socket.on('data', (chunk) => {
      received += chunk.length;
      socket.pause();
      setTimeout(() => socket.resume(), 20);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const socket = connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  cleanups.push(() => socket.destroy());
  // Bytes the peer process already holds count as received, read by its app or not yet.
  return { socket, received: () => received + (peerSocket?.readableLength ?? 0) };
}

/** Writes continuously until its work-phase participant pauses it. */
function producer(guard: Guard, targets: Writable[]) {
  const chunk = Buffer.alloc(32 * 1024, 'x');
  let written = 0;
  let running = true;
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    if (!running) return;
    for (const t of targets) t.write(chunk);
    written += chunk.length;
    timer = setTimeout(tick, 1);
  };
  tick();
  guard.use({
    name: 'producer',
    phase: 'work',
    prepare: () => {
      running = false;
      clearTimeout(timer);
    },
    resume: () => {
      running = true;
      tick();
    },
  });
  cleanups.push(() => {
    running = false;
    clearTimeout(timer);
  });
  const stop = () => {
    running = false;
    clearTimeout(timer);
  };
  return { written: () => written, stop };
}

describe('guardWritable', () => {
  it('file and slow socket: every byte written before prepare is on disk / received; none lost after resume', async () => {
    const { guard, source } = await makeGuard();
    const dir = await tmp();
    const file = createWriteStream(join(dir, 'audit.log'));
    const peer = await slowPeer();
    const resumes: unknown[] = [];
    guardWritable(guard, file, { name: 'file', fsync: true, onResume: (i) => resumes.push(i) });
    guardWritable(guard, peer.socket, { name: 'socket' });
    const p = producer(guard, [file, peer.socket]);
    await until(() => peer.socket.writableLength > 1024 * 1024, 5_000, 'backpressure');
    let writtenAtPrepare = 0;
    guard.on('state', (s) => {
      if (s === 'preparing') writtenAtPrepare = p.written();
    });
    source.announce({});
    await until(() => guard.state === 'frozen', 20_000, 'prepared');
    expect(statSync(join(dir, 'audit.log')).size).toBeGreaterThanOrEqual(writtenAtPrepare);
    // Everything left the process: read by the peer, or queued in the kernel on either side.
    const inKernel = await kernelQueued(peer.socket.localPort!);
    expect(peer.received() + inKernel).toBeGreaterThanOrEqual(writtenAtPrepare);
    expect(file.writableLength).toBe(0);
    expect(peer.socket.writableLength).toBe(0);
    source.announce();
    await until(() => guard.state === 'idle', 5_000, 'resumed');
    expect(resumes).toEqual([{ pausedMs: 0, clockStepMs: 0, cancelled: false }]);
    await wait(100);
    p.stop();
    const total = p.written();
    await new Promise<void>((r) => file.end(r));
    expect((await readFile(join(dir, 'audit.log'))).length).toBe(total);
    await new Promise<void>((r) => peer.socket.end(r));
    await until(() => peer.received() === total, 10_000, 'peer got everything');
  });

  it("calls the stream's own flush (zlib)", async () => {
    const { guard, source } = await makeGuard();
    const gzip = createGzip();
    const out: Buffer[] = [];
    gzip.on('data', (c) => out.push(c));
    gzip.write('hello before the freeze\n');
    guardWritable(guard, gzip, { name: 'gzip' });
    source.announce({});
    await until(() => guard.state === 'frozen', 5_000, 'prepared');
    // Without a flush, zlib would still hold these bytes; after Z_SYNC_FLUSH they decode.
    const inflated = gunzipSync(Buffer.concat(out), {
      finishFlush: 2 /* Z_SYNC_FLUSH */,
    }).toString();
    expect(inflated).toBe('hello before the freeze\n');
  });

  it('ends the stream for an event the VM does not survive', async () => {
    const { guard, source } = await makeGuard();
    const dir = await tmp();
    const file = createWriteStream(join(dir, 'x.log'));
    file.write('last words');
    guardWritable(guard, file, { name: 'file' });
    source.announce({ EventType: 'Reboot' });
    await until(() => guard.state === 'shutting-down', 5_000, 'shutting-down');
    expect(file.writableFinished).toBe(true);
    expect(await readFile(join(dir, 'x.log'), 'utf8')).toBe('last words');
  });

  it('faults: an erroring, a never-draining and a destroyed stream are reported; the guard still resumes', async () => {
    const { guard, source } = await makeGuard({ prepareTimeoutMs: 300 });
    const erroring = new Writable({
      highWaterMark: 4,
      write: (_c, _e, cb) => setTimeout(() => cb(new Error('disk full')), 20),
    });
    erroring.on('error', () => {}); // the app's own handler
    erroring.write('aaaaaaaa');
    const stuck = new Writable({ highWaterMark: 4, write: () => {} });
    stuck.write('bbbbbbbb');
    const doomed = new Writable({ highWaterMark: 4, write: (_c, _e, cb) => setTimeout(cb, 50) });
    doomed.on('error', () => {});
    doomed.write('c'.repeat(64));
    doomed.write('d'.repeat(64));
    guardWritable(guard, erroring, { name: 'erroring' });
    guardWritable(guard, stuck, { name: 'stuck' });
    guardWritable(guard, doomed, { name: 'doomed' });
    source.announce({});
    await wait(30);
    doomed.destroy(new Error('peer went away'));
    await until(() => guard.state === 'frozen', 5_000, 'past prepare');
    const outcomes = Object.fromEntries(
      guard.status().participants.map((p) => [p.name, p.prepare?.outcome]),
    );
    expect(outcomes).toEqual({ erroring: 'error', stuck: 'timeout', doomed: 'error' });
    source.announce();
    await until(() => guard.state === 'idle', 5_000, 'resumed');
  });
});

describe('guardWritable: listeners', () => {
  it('a slow drain keeps one drain listener, removed afterwards; the handle closes', async () => {
    const { guard, source } = await makeGuard({ prepareTimeoutMs: 5_000 });
    // 40 chunks × 15 ms: a drain of ~600 ms, polled every 10 ms.
    const slow = new Writable({ highWaterMark: 1, write: (_c, _e, cb) => setTimeout(cb, 15) });
    for (let i = 0; i < 40; i++) slow.write('x');
    const before = slow.listenerCount('drain');
    const handle = guardWritable(guard, slow, { name: 'slow' });
    expect(handle.participant).toMatchObject({ name: 'slow', phase: 'data' });
    let most = 0;
    const probe = setInterval(() => {
      most = Math.max(most, slow.listenerCount('drain') - before);
    }, 5);
    cleanups.push(() => clearInterval(probe));
    source.announce({});
    await until(() => guard.state === 'frozen', 5_000, 'past prepare');
    clearInterval(probe);
    expect(slow.writableLength).toBe(0);
    expect(most).toBe(1);
    expect(slow.listenerCount('drain')).toBe(before);
    expect(slow.listenerCount('error')).toBe(0);
    source.announce();
    await until(() => guard.state === 'idle', 5_000, 'resumed');
    handle.close();
    handle.close();
    expect(guard.status().participants.map((p) => p.name)).not.toContain('slow');
  });
});

describe('guardFlushable', () => {
  it('flushes before the freeze, closes on shutdown events, reports the pause after', async () => {
    const { guard, source } = await makeGuard();
    const calls: string[] = [];
    guardFlushable(guard, {
      name: 'otel',
      flush: async () => {
        await wait(20);
        calls.push('flush');
      },
      close: () => calls.push('close'),
      onResume: (i) => calls.push(`resume:${i.cancelled}`),
    });
    source.announce({});
    await until(() => guard.state === 'frozen', 5_000, 'prepared');
    expect(calls).toEqual(['flush']);
    source.announce();
    await until(() => guard.state === 'idle', 5_000, 'resumed');
    expect(calls).toEqual(['flush', 'resume:false']);
    source.announce({ EventType: 'Terminate' });
    await until(() => guard.state === 'shutting-down', 5_000, 'shutdown');
    expect(calls).toEqual(['flush', 'resume:false', 'flush', 'close']);
  });
});

/** An SSE server with Last-Event-ID replay; one event every 20 ms. */
async function sseServer(guard: Guard) {
  const streams = guardResponseStreams(guard, { retryMs: 100 });
  let nextId = 1;
  const history: number[] = [];
  const clients = new Set<ServerResponse>();
  const ticker = setInterval(() => {
    const id = nextId++;
    history.push(id);
    for (const res of clients) res.write(`id: ${id}\ndata: event ${id}\n\n`);
  }, 20);
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
    const last = Number(req.headers['last-event-id'] ?? 0);
    for (const id of history) if (id > last) res.write(`id: ${id}\ndata: event ${id}\n\n`);
    clients.add(res);
    res.on('close', () => clients.delete(res));
    streams.track(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => server.close(r)));
  cleanups.push(() => server.closeAllConnections());
  cleanups.push(() => clearInterval(ticker));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/events`,
    streams,
    lastId: () => nextId - 1,
    stop: () => clearInterval(ticker),
  };
}

describe('guardResponseStreams', () => {
  it('SSE: the client gets the retry hint and the end before the freeze, reconnects, loses no event id', async () => {
    const { guard, source } = await makeGuard();
    const server = await sseServer(guard);
    const client = sseClient(server.url, { initialRetryMs: 100 });
    cleanups.push(() => client.stop());
    await until(() => client.ids.length >= 10, 5_000, '10 events');
    expect(server.streams.size).toBe(1);
    source.announce({});
    await until(() => guard.state === 'frozen', 5_000, 'prepared');
    await until(() => client.retries.length > 0, 2_000, 'retry hint');
    expect(client.retries).toEqual([100]);
    expect(server.streams.size).toBe(0); // ended and untracked, no leak
    source.announce();
    await until(() => guard.state === 'idle', 5_000, 'resumed');
    await until(() => client.connections() >= 2 && client.ids.length >= 30, 5_000, 'reconnected');
    server.stop();
    await wait(100);
    const expected = Array.from({ length: server.lastId() }, (_, i) => i + 1);
    expect(client.ids).toEqual(expected);
  });

  it('non-SSE streams get onDrain; responses that end by themselves are untracked', async () => {
    const { guard, source } = await makeGuard();
    const streams = guardResponseStreams(guard);
    const drained: string[] = [];
    const server = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'video/mp2t' });
      if (req.url === '/short') {
        streams.track(res);
        res.end('done');
        return;
      }
      res.write('chunk');
      streams.track(res, {
        onDrain: (r) => {
          drained.push(req.url ?? '');
          r.end('last chunk');
        },
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const fetchAll = (path: string) =>
      new Promise<string>((resolve) =>
        get(`${base}${path}`, { agent: false }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve(body));
        }),
      );
    expect(await fetchAll('/short')).toBe('done');
    const media = fetchAll('/media');
    await until(() => streams.size === 1, 5_000, 'tracked');
    source.announce({});
    expect(await media).toBe('chunklast chunk');
    expect(drained).toEqual(['/media']);
    expect(streams.size).toBe(0);
  });
});
