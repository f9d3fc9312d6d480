import { assertOption, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { TimerHandle, Timers } from '../time/clock.js';

/**
 * Options of `guard.handleSignals()`.
 *
 * The default `timeoutMs` (25 s) fits Kubernetes' default `terminationGracePeriodSeconds`
 * (30 s): the kubelet sends SIGTERM, waits the grace period, then SIGKILLs; 5 s are left for
 * `close`, `stop()` and the exit. The grace period also counts a `preStop` hook's time, so
 * with a `preStop` sleep of N s use `timeoutMs` ≤ (grace − N − 5) × 1000.
 */
export interface SignalOptions {
  /** The signals that drain. Default `['SIGTERM', 'SIGINT']`. */
  readonly signals?: readonly NodeJS.Signals[];
  /**
   * The whole sequence (drain, `close`, `stop()`) must end within this; exit 1 after it.
   * Default `FREEZEGUARD_SHUTDOWN_TIMEOUT_MS`, else 25 000.
   */
  readonly timeoutMs?: number;
  /** Runs after the drain, before `stop()`: close your server, queues, connections. */
  readonly close?: () => unknown;
  /** How the process ends. Default `process.exit`; tests inject their own. */
  readonly exit?: (code: number) => void;
}

/** The default bound: Kubernetes' 30 s grace period less 5 s for close, stop and exit. */
export const SIGNAL_TIMEOUT_MS = 25_000;

/** What the handlers need from their guard. */
export interface SignalTarget {
  readonly logger: Logger;
  readonly timers: Timers;
  status(): { readonly running: boolean };
  shutdown(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Installs the SIGTERM/SIGINT handlers of `guard.handleSignals()`: the first signal drains
 * like `shutdown()` (readiness fails at once, liveness stays healthy, workers pause,
 * buffers flush), then runs `close`, stops the guard and exits 0, or 1 when `timeoutMs`
 * passed first or a step threw; a second signal exits 1 at once (an operator pressing
 * Ctrl-C twice means it). Returns the function that removes the handlers.
 *
 * @example
 * ```ts
 * const dispose = installSignalHandlers(guard, { close: () => new Promise((r) => server.close(r)) });
 * ```
 */
export function installSignalHandlers(
  guard: SignalTarget,
  options: SignalOptions = {},
): () => void {
  const raw = process.env.FREEZEGUARD_SHUTDOWN_TIMEOUT_MS?.trim();
  const fromEnv = raw ? Number(raw) : undefined;
  assertOption(
    fromEnv === undefined || (Number.isFinite(fromEnv) && fromEnv > 0),
    'FREEZEGUARD_SHUTDOWN_TIMEOUT_MS',
    'must be a number of milliseconds > 0',
    raw,
  );
  const timeoutMs = options.timeoutMs ?? fromEnv ?? SIGNAL_TIMEOUT_MS;
  assertOption(
    Number.isFinite(timeoutMs) && timeoutMs > 0,
    'timeoutMs',
    'must be a number > 0',
    timeoutMs,
  );
  assertOption(
    options.close === undefined || typeof options.close === 'function',
    'close',
    'must be a function',
    options.close,
  );
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const { logger, timers } = guard;
  let draining = false;
  let exited = false;
  let timer: TimerHandle | null = null;
  const finish = (code: number): void => {
    if (exited) return;
    exited = true;
    if (timer !== null) timers.clearTimeout(timer);
    exit(code);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (draining) {
      logger.warn({ signal }, 'freezeguard: second signal: exiting now');
      finish(1);
      return;
    }
    draining = true;
    logger.info({ signal, timeoutMs }, 'freezeguard: signal received: draining, then exiting');
    timer = timers.setTimeout(() => {
      timer = null;
      logger.warn(
        { signal, timeoutMs },
        `freezeguard: shutdown did not finish within ${timeoutMs} ms; exiting`,
      );
      finish(1);
    }, timeoutMs);
    void (async () => {
      if (guard.status().running) await guard.shutdown();
      await options.close?.();
      await guard.stop();
    })().then(
      () => {
        logger.info({ signal }, 'freezeguard: drained and closed; exiting');
        finish(0);
      },
      (err: unknown) => {
        logger.error({ signal, err: toError(err) }, 'freezeguard: shutdown failed; exiting');
        finish(1);
      },
    );
  };
  for (const s of signals) process.on(s, onSignal);
  return () => {
    for (const s of signals) process.off(s, onSignal);
  };
}
