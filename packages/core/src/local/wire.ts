import type { Socket } from 'node:net';

/*
 * The local channel's framing: one JSON object per line over a Unix socket. Messages are
 * small (a document, a heartbeat); a line longer than MAX_LINE closes the connection.
 */

const MAX_LINE = 2 * 1024 * 1024;

/**
 * A message on the channel: `t` names it, the rest depends on it.
 *
 * @example
 * ```ts
 * const m: WireMessage = { t: 'doc', term: 3, document };
 * ```
 */
export type WireMessage = { readonly t: string } & Record<string, unknown>;

/**
 * Writes one message; a closed socket drops it (its `close` handler deals with that).
 *
 * @example
 * ```ts
 * send(socket, { t: 'ping' });
 * ```
 */
export function send(socket: Socket, message: WireMessage): void {
  if (socket.destroyed || !socket.writable) return;
  socket.write(`${JSON.stringify(message)}\n`);
}

/**
 * Calls `onMessage` for every well-formed line `socket` receives.
 *
 * @example
 * ```ts
 * receive(socket, (m) => { if (m.t === 'pong') lastHeard = Date.now(); });
 * ```
 */
export function receive(socket: Socket, onMessage: (message: WireMessage) => void): void {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    if (buffer.length > MAX_LINE && !buffer.includes('\n')) {
      socket.destroy();
      return;
    }
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf('\n');
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        continue;
      }
      if (
        typeof message === 'object' &&
        message !== null &&
        typeof (message as WireMessage).t === 'string'
      ) {
        onMessage(message as WireMessage);
      }
    }
  });
}
