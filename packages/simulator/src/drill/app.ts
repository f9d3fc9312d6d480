import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { delay, httpStatus } from '../process.js';

/*
 * The app under a drill: started in a process group of its own (so SIGSTOP reaches the
 * whole tree, npm → node …), its output passed on, waited for until healthy.
 */

/** A started app. */
export interface DrillApp {
  readonly child: ChildProcess;
  /** Resolves with why, when the app exits or fails to start. */
  readonly ended: Promise<string>;
}

/**
 * Starts `command` detached, with `env` as its whole environment; each line it prints goes
 * to `say`.
 *
 * @example
 * ```ts
 * const app = launchApp(['node', 'server.js'], { env: { ...process.env, PORT: '3000' } }, console.log);
 * ```
 */
export function launchApp(
  command: readonly string[],
  options: { readonly env: NodeJS.ProcessEnv; readonly cwd?: string | undefined },
  say: (line: string) => void,
): DrillApp {
  const child = spawn(command[0]!, command.slice(1), {
    cwd: options.cwd,
    env: options.env,
    // Its own process group, so SIGSTOP reaches the whole tree (npm → node …).
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => say(`            app │ ${line}`));
  }
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, sig) => resolve(`exited (${sig ?? code})`)),
  );
  const spawnError = new Promise<string>((resolve) =>
    child.once('error', (err) => resolve(`failed to start: ${err.message}`)),
  );
  return { child, ended: Promise.race([exited, spawnError]) };
}

/**
 * Resolves once `healthUrl` answers 200; throws when the app ends first or `timeoutMs`
 * passes.
 *
 * @example
 * ```ts
 * await waitHealthy(app, 'http://127.0.0.1:3000/health/ready', 30_000);
 * ```
 */
export async function waitHealthy(
  app: DrillApp,
  healthUrl: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const status = await Promise.race([httpStatus(healthUrl, { timeoutMs: 1000 }), app.ended]);
    if (status === 200) return;
    if (
      typeof status === 'string' &&
      (status.startsWith('exited') || status.startsWith('failed'))
    ) {
      throw new Error(`the app ${status} before it was healthy`);
    }
    if (performance.now() > deadline) {
      throw new Error(
        `the app did not answer 200 on ${healthUrl} within ${timeoutMs} ms (last: ${status})`,
      );
    }
    await delay(200, signal);
  }
}
