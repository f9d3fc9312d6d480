import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('./fixtures/worker-child.mjs', import.meta.url));

export interface Child {
  readonly proc: ChildProcess;
  readonly messages: Record<string, unknown>[];
  waitFor(
    pred: (m: Record<string, unknown>) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export function startWorkerChild(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const messages: Record<string, unknown>[] = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      messages.push(JSON.parse(line));
    } catch {
      messages.push({ raw: line });
    }
  });
  return {
    proc,
    messages,
    async waitFor(pred, timeoutMs = 15_000, what = 'message') {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find(pred);
        if (found) return found;
        if (proc.exitCode !== null)
          throw new Error(`worker child exited (${proc.exitCode}) before ${what}`);
        if (Date.now() > deadline)
          throw new Error(
            `no ${what} within ${timeoutMs} ms; got ${JSON.stringify(messages.slice(-5))}`,
          );
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGCONT');
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    },
  };
}

export { until, wait } from '@freezeguard/test-utils';
