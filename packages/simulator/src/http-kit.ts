import type { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { FaultInput, SimRequest } from './types.js';

/*
 * The HTTP plumbing the three metadata-server emulators (Azure, GCE, EC2) share, so that
 * request recording, fault injection and shutdown behave the same whichever cloud a test
 * or drill emulates. What each cloud answers stays in its own file.
 */

/** How many requests an emulator keeps in `requests` (the oldest are dropped). */
const MAX_RECORDED = 10_000;

/** The HTTP server of one emulator: tracks its sockets so `close()` never waits on keep-alive. */
export interface SimServer {
  readonly server: Server;
  /** Listens; resolves with the port and base URL actually bound. */
  listen(port: number, host: string): Promise<{ port: number; url: string }>;
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
}

/**
 * An HTTP server for an emulator: `handle` answers each request, and a rejection of it
 * becomes `fail(res, err)` (a 500 in the cloud's own format) unless an answer has begun.
 *
 * @example
 * ```ts
 * const http = createSimServer(handle, (res, err) => res.writeHead(500).end(String(err)));
 * const { url } = await http.listen(0, '127.0.0.1');
 * await http.close();
 * ```
 */
export function createSimServer(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  fail: (res: ServerResponse, err: unknown) => void,
): SimServer {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) fail(res, err);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return {
    server,
    async listen(port, host) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      const h = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return { port: address.port, url: `http://${h}:${address.port}` };
    },
    async close() {
      server.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) =>
        server.listening ? server.once('close', () => resolve()) : resolve(),
      );
    },
  };
}

/**
 * Appends a request to `requests` (keeping the last 10,000) and, once its answer is sent,
 * fills in the status and emits `request` on `emitter`.
 *
 * @example
 * ```ts
 * recordRequest(this.requests, this, req, res, new URL(req.url ?? '/', 'http://imds'));
 * ```
 */
export function recordRequest(
  requests: SimRequest[],
  emitter: EventEmitter,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): void {
  const record: SimRequest = {
    at: Date.now(),
    method: req.method ?? 'GET',
    path: url.pathname + url.search,
    headers: { ...req.headers },
    status: 0,
  };
  requests.push(record);
  if (requests.length > MAX_RECORDED) requests.shift();
  res.on('finish', () => {
    record.status = res.statusCode;
    emitter.emit('request', record);
  });
}

/** Writes a whole answer; `headers` may override the sender's own. */
export type Sender = (
  res: ServerResponse,
  status: number,
  body: string,
  headers?: Readonly<Record<string, string>>,
) => void;

/**
 * A {@link Sender} that writes `base` headers, the `Content-Length` of the body, then the
 * answer's own headers.
 *
 * @example
 * ```ts
 * const send = textSender({ Server: 'EC2ws' });
 * send(res, 200, 'i-0123');
 * ```
 */
export function textSender(base: Readonly<Record<string, string>>): Sender {
  return (res, status, body, headers = {}) => {
    res.writeHead(status, { ...base, 'Content-Length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };
}

/**
 * Faults queued by `fault()`, each used for its next `times` matching answers.
 *
 * @example
 * ```ts
 * const faults = new FaultQueue<FaultInput>();
 * faults.add({ status: 500, times: 2 });
 * const fault = faults.take(); // { status: 500, … } twice, then undefined
 * ```
 */
export class FaultQueue<F extends FaultInput> {
  readonly #faults: (F & { remaining: number })[] = [];

  /** Queues a fault; throws a TypeError when `times` is below 1. */
  add(fault: F): void {
    const times = fault.times ?? 1;
    if (!(times >= 1)) throw new TypeError(`fault(): \`times\` must be ≥ 1 (got ${fault.times})`);
    this.#faults.push({ ...fault, remaining: times });
  }

  clear(): void {
    this.#faults.length = 0;
  }

  /** The first queued fault `match` accepts, counted as used once (and dropped when used up). */
  take(match: (fault: F) => boolean = () => true): F | undefined {
    const fault = this.#faults.find(match);
    if (fault && --fault.remaining <= 0) this.#faults.splice(this.#faults.indexOf(fault), 1);
    return fault;
  }
}

/** How one cloud answers the faults every emulator knows. */
export interface FaultAnswers {
  status(status: number): void;
  garbage(): void;
  oversized(): void;
}

/**
 * Serves a fault: waits `delayMs`, then destroys the connection (`reset`) or answers the
 * status, garbage or oversized body the cloud's way. Resolves false when nothing was
 * answered (no fault, or only a delay), so the caller answers as usual.
 *
 * @example
 * ```ts
 * if (await applyFault(faults.take(), req, { status, garbage, oversized })) return;
 * ```
 */
export async function applyFault(
  fault: FaultInput | undefined,
  req: IncomingMessage,
  answer: FaultAnswers,
): Promise<boolean> {
  if (!fault) return false;
  if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs).unref());
  if (fault.reset) {
    req.socket.destroy();
    return true;
  }
  if (fault.status) {
    answer.status(fault.status);
    return true;
  }
  if (fault.garbage) {
    answer.garbage();
    return true;
  }
  if (fault.oversized) {
    answer.oversized();
    return true;
  }
  return false;
}

/**
 * Reads a request body as UTF-8; rejects (and drops the connection) above `maxBytes`.
 *
 * @example
 * ```ts
 * const body = JSON.parse(await readBody(req));
 * ```
 */
export function readBody(req: IncomingMessage, maxBytes = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
