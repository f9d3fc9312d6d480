import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Socket } from 'node:net';

/**
 * What Node's HTTP server keeps on a connection: the server that accepted it, and the
 * response being written on it (`_httpMessage`, which Node's own `closeIdleConnections()`
 * reads too).
 */
interface Connection extends Socket {
  server?: Server | null;
  _httpMessage?: ServerResponse | null;
}

/**
 * In-flight work, tracked per connection. Outside a drain a request costs one property
 * read on its socket: each connection is remembered once (one `close` listener per
 * socket), nothing per response. When a drain begins, the responses being written on
 * those connections are collected, and from then on every new one too, until none is
 * left.
 */
export interface InFlight {
  /** Hot path: remembers the request's connection (once per connection). */
  see(req: IncomingMessage): void;
  /** While draining: a response to wait for. Does nothing otherwise. */
  watch(res: ServerResponse): void;
  /** Marks a response that is not application work (a probe, a scrape): never waited for. */
  exempt(res: ServerResponse): void;
  /** Responses in flight on the connections seen (probes and scrapes excluded). */
  readonly count: number;
  /** Starts collecting the responses in flight; each gets `Connection: close` if it can. Idempotent. */
  beginDrain(): void;
  /** Ready again: stops collecting. */
  endDrain(): void;
  /** Resolves once no collected response is in flight, or when `signal` aborts. */
  settled(signal: AbortSignal): Promise<void>;
  /** A server whose idle keep-alive connections are closed at the end of a drain. */
  attachServer(server: Server): void;
  /** Closes the idle keep-alive connections of every server known. */
  closeIdle(): void;
  close(): void;
}

/** The connection tracker of one HTTP guard. */
export function createInFlight(): InFlight {
  // Per tracker, so two guards on one server never share state.
  const seen = Symbol('freezeguard.connection');
  const exempted = Symbol('freezeguard.exempt');
  const sockets = new Set<Connection>();
  const servers = new Set<Server>();
  let live: Set<ServerResponse> | null = null;
  let waiters: (() => void)[] = [];
  let closed = false;
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };

  function forget(this: Connection): void {
    sockets.delete(this);
  }
  function adopt(socket: Connection): void {
    (socket as unknown as Record<symbol, boolean>)[seen] = true;
    // Injected requests (light-my-request) have a stand-in that never closes: not tracked.
    if (closed || !(socket instanceof Socket)) return;
    sockets.add(socket);
    socket.on('close', forget);
    if (socket.server) attachServer(socket.server);
  }
  function attachServer(server: Server): void {
    if (servers.has(server)) return;
    servers.add(server);
    server.once('close', () => servers.delete(server));
  }
  const isExempt = (res: ServerResponse) =>
    (res as unknown as Record<symbol, boolean>)[exempted] === true;

  function watch(res: ServerResponse): void {
    if (live === null || res.closed || live.has(res) || isExempt(res)) return;
    live.add(res);
    // Marks a response not yet started: once draining, no connection is kept alive.
    if (!res.headersSent) res.setHeader('Connection', 'close');
    const socket = (res.req?.socket ?? res.socket) as Connection | null;
    res.once('close', () => {
      if (live === null) return;
      live.delete(res);
      // A pipelined request's response is handed the connection as this one ends.
      const next = socket?._httpMessage;
      if (next && next !== res) watch(next);
      if (live.size === 0) wake();
    });
  }

  function inFlightNow(): number {
    let n = 0;
    for (const socket of sockets) {
      const res = socket._httpMessage;
      if (res && !res.closed && !isExempt(res)) n++;
    }
    return n;
  }

  return {
    see(req) {
      const socket = req.socket as Connection;
      if ((socket as unknown as Record<symbol, boolean>)[seen] !== true) adopt(socket);
    },
    watch,
    exempt(res) {
      (res as unknown as Record<symbol, boolean>)[exempted] = true;
    },
    get count() {
      return live === null ? inFlightNow() : live.size;
    },
    beginDrain() {
      if (live !== null) return;
      live = new Set();
      for (const socket of sockets) {
        const res = socket._httpMessage;
        if (res) watch(res);
      }
    },
    endDrain() {
      live = null;
      wake();
    },
    settled(signal) {
      if (live === null || live.size === 0 || signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          waiters = waiters.filter((w) => w !== done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        waiters.push(done);
        signal.addEventListener('abort', done, { once: true });
      });
    },
    attachServer,
    closeIdle() {
      // Node closes keep-alive connections with no request in flight; busy ones close after
      // their response, which carries Connection: close.
      for (const server of servers) server.closeIdleConnections();
    },
    close() {
      closed = true;
      for (const socket of sockets) socket.off('close', forget);
      sockets.clear();
      live = null;
      wake();
    },
  };
}
