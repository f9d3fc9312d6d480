import { createServer } from 'node:net';

/**
 * Asks the kernel for a free TCP port on 127.0.0.1. For programs that must be told a
 * port (redis-server, HAProxy); our own servers listen on port 0 instead.
 *
 * @example
 * ```ts
 * const port = await freePort();
 * ```
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
