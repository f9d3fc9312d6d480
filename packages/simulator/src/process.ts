/**
 * `@freezeguard/simulator/process` — the process and HTTP helpers a rehearsal needs, shared
 * by the drill, the repository's end-to-end tests and its benchmarks: stop and continue a
 * process group (SIGSTOP/SIGCONT), end one for good, a free port, a one-shot GET.
 *
 * @example
 * ```ts
 * import { freePort, httpStatus, stopProcessGroup } from '@freezeguard/simulator/process';
 * const port = await freePort();
 * const app = spawn('node', ['server.js'], { detached: true, env: { ...process.env, PORT: String(port) } });
 * await httpStatus(`http://127.0.0.1:${port}/health/ready`); // 200, or 'ECONNREFUSED' / 'timeout'
 * await stopProcessGroup(app);
 * ```
 *
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { type Agent, request } from 'node:http';
import { createServer } from 'node:net';

/**
 * Waits `ms`; rejects with the signal's reason when aborted. The abort listener is removed
 * when the wait ends, so loops never pile them up.
 *
 * @example
 * ```ts
 * await delay(250, controller.signal);
 * ```
 */
export const delay = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Signals a process group (a child spawned `detached` leads its own), else the process
 * alone; a process already gone is not an error.
 *
 * @example
 * ```ts
 * signalGroup(app.pid!, 'SIGSTOP'); // the whole tree (npm → node …) stops
 * ```
 */
export function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/**
 * Stops the app `pid` (its group) for `freezeMs` and continues it, even when the wait is
 * aborted; returns when it stopped and continued (`performance.now()`).
 *
 * @example
 * ```ts
 * const { stopAt, continueAt } = await freezeProcess(app.pid!, 5000, {}, console.log);
 * ```
 */
export async function freezeProcess(
  pid: number,
  freezeMs: number,
  options: {
    readonly signal?: AbortSignal;
    readonly onStop?: () => void;
    readonly onContinue?: () => void;
  },
  mark: (what: string) => void,
): Promise<{ stopAt: number; continueAt: number }> {
  signalGroup(pid, 'SIGSTOP');
  options.onStop?.();
  const stopAt = performance.now();
  mark(`SIGSTOP: app frozen for ${(freezeMs / 1000).toFixed(1)} s`);
  try {
    await delay(freezeMs, options.signal);
  } finally {
    signalGroup(pid, 'SIGCONT');
    options.onContinue?.();
  }
  const continueAt = performance.now();
  mark('SIGCONT: app resumed');
  return { stopAt, continueAt };
}

/**
 * Ends a child and its process group: SIGCONT (a frozen process cannot handle SIGTERM),
 * SIGTERM, and SIGKILL if it is still there after `graceMs`. Resolves once it exited;
 * at once when it already had.
 *
 * @example
 * ```ts
 * await stopProcessGroup(app, { graceMs: 5000 });
 * ```
 */
export async function stopProcessGroup(
  child: ChildProcess,
  options: { readonly graceMs?: number } = {},
): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalGroup(pid, 'SIGCONT');
  signalGroup(pid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), options.graceMs ?? 3000);
  await gone;
  clearTimeout(timer);
}

/**
 * Asks the kernel for a free TCP port on 127.0.0.1, for programs that must be told a port
 * (an app under a drill, redis-server, HAProxy); our own servers listen on port 0 instead.
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
 * await httpStatus('http://127.0.0.1:3000/health/ready', { timeoutMs: 500 }); // 200
 * ```
 */
export function httpStatus(
  url: string,
  options: { readonly timeoutMs?: number; readonly agent?: Agent | false } = {},
): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'GET', agent: options.agent ?? false, timeout: options.timeoutMs ?? 1000 },
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

/**
 * Polls `check` every 20 ms until it is true; throws naming `what` after `timeoutMs`. For
 * tests and drills that wait on another process or server (bounded, never forever).
 *
 * @example
 * ```ts
 * await until(() => guard.state === 'idle', 5_000, 'idle');
 * ```
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}
