import { type Agent, request } from 'node:http';
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

/**
 * One GET: the status code, or `'timeout'` / the error code. A new connection each time
 * unless an `agent` is given, as a load balancer's health check does.
 *
 * @example
 * ```ts
 * await httpStatus('http://127.0.0.1:3000/health/ready'); // 200
 * ```
 */
export function httpStatus(
  url: string,
  options: { readonly timeoutMs?: number; readonly agent?: Agent | false } = {},
): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { agent: options.agent ?? false, timeout: options.timeoutMs ?? 1000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => {
      req.destroy();
      resolve('timeout');
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    req.end();
  });
}
