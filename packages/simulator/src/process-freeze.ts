/**
 * How a rehearsal freezes a real app, whatever the cloud: its process group stopped
 * with SIGSTOP for the freeze and continued with SIGCONT, waits that an abort cuts short.
 */

/** Waits `ms`; the abort listener is removed when the wait ends, so loops never pile them up. */
export const delay = (ms: number, signal?: AbortSignal) =>
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

/** Signals a process group (a detached child leads its own), else the process alone. */
export function signalTree(pid: number, sig: NodeJS.Signals): void {
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
 * Stops the app `pid` for `freezeMs` and continues it, even when the wait is aborted;
 * returns when it stopped and continued (`performance.now()`).
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
  signalTree(pid, 'SIGSTOP');
  options.onStop?.();
  const stopAt = performance.now();
  mark(`SIGSTOP: app frozen for ${(freezeMs / 1000).toFixed(1)} s`);
  try {
    await delay(freezeMs, options.signal);
  } finally {
    signalTree(pid, 'SIGCONT');
    options.onContinue?.();
  }
  const continueAt = performance.now();
  mark('SIGCONT: app resumed');
  return { stopAt, continueAt };
}
