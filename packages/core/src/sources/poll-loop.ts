import { FreezeguardError } from '../errors.js';
import type { MaintenanceDocument } from '../event.js';
import { type Logger, silentLogger } from '../logger.js';
import type { MetadataClient } from './metadata-http.js';
import type { SourceContext, SourceHealth } from './source.js';

// The poll loop every metadata source shares: one read at a time, backoff with jitter,
// one warning per failure streak. The HTTP rules live in metadata-http.ts.

/** Options of {@link createPollLoop}. */
export interface PollLoopOptions {
  /** For log messages: `IMDS Scheduled Events`, `GCE maintenance-event`… */
  readonly label: string;
  readonly client: MetadataClient;
  /** The pause after a good read when `read` does not say otherwise. */
  readonly intervalMs: number;
  readonly maxBackoffMs: number;
  /**
   * One read; resolves with the document and optionally when to read next. `error` says
   * one part of it failed (a bad value, one key unreachable): the document built from the
   * rest is still delivered, so one bad key never blinds the others.
   */
  readonly read: () => Promise<{
    document: MaintenanceDocument | null;
    nextInMs?: number;
    error?: unknown;
  }>;
  /** Errors carrying `details.status` of 429 wait at least this long. Default 1000. */
  readonly throttledMinMs?: number;
}

/** The poll half of a metadata source. */
export interface PollLoop {
  start(context: SourceContext): void;
  stop(): void;
  health(): SourceHealth;
  readonly running: boolean;
}

/**
 * Exponential backoff with equal jitter: the wait before retry number `streak` (from 1).
 * Keeps a floor of half the step so a fleet does not retry in lock-step.
 *
 * @example
 * ```ts
 * backoffDelay(3, 1000, 5000); // between 2000 and 4000
 * ```
 */
export function backoffDelay(
  streak: number,
  intervalMs: number,
  maxBackoffMs: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxBackoffMs, intervalMs * 2 ** Math.min(Math.max(0, streak - 1), 16));
  const delay = exp / 2 + random() * (exp / 2);
  return Math.max(Math.min(intervalMs, maxBackoffMs), Math.min(maxBackoffMs, delay));
}

/**
 * Reads a metadata document again and again: `onDocument` on every good read, retries
 * with backoff on failures, one warning per failure streak (the rest at debug), one info
 * line when reachable again, and health for `guard.status()`. A failure in `read` or in
 * the guard's handlers never stops the loop.
 *
 * @example
 * ```ts
 * const loop = createPollLoop({ label: 'IMDS', client, intervalMs: 1000, maxBackoffMs: 5000,
 *   read: async () => ({ document: await readDocument() }) });
 * loop.start(context);
 * ```
 */
export function createPollLoop(o: PollLoopOptions): PollLoop {
  let ctx: SourceContext | null = null;
  let logger: Logger = silentLogger;
  let running = false;
  let timer: unknown = null;
  // Bumped by start(): a read still in flight from before a stop() must not run a second loop.
  let generation = 0;
  const health = {
    lastSuccessAt: null as number | null,
    lastErrorAt: null as number | null,
    lastError: null as { code: string; message: string } | null,
    consecutiveFailures: 0,
    readingSince: null as number | null,
  };

  function toFreezeguard(err: unknown): FreezeguardError {
    return err instanceof FreezeguardError
      ? err
      : new FreezeguardError(
          'ERR_BAD_DOCUMENT',
          `${o.label}: ${(err as Error)?.message ?? String(err)}`,
          { cause: err },
        );
  }

  async function poll(): Promise<void> {
    timer = null;
    const context = ctx;
    if (!running || !context) return;
    const mine = generation;
    let delay = o.intervalMs;
    let failure: unknown = null;
    health.readingSince = context.clock.now();
    try {
      const { document, nextInMs, error } = await o.read();
      if (!running || mine !== generation) return;
      health.readingSince = null;
      if (nextInMs !== undefined) delay = nextInMs;
      if (document) {
        try {
          context.onDocument(document);
        } catch (err) {
          logger.error({ err: toFreezeguard(err).toJSON() }, 'freezeguard: onDocument threw');
        }
      }
      if (error !== undefined) failure = error;
      else {
        if (health.consecutiveFailures > 0) {
          logger.info(
            { failures: health.consecutiveFailures },
            `freezeguard: ${o.label} reachable again`,
          );
        }
        health.consecutiveFailures = 0;
        health.lastSuccessAt = context.clock.now();
      }
    } catch (err) {
      failure = err;
    }
    if (failure !== null) {
      if (!running || mine !== generation) return;
      health.readingSince = null;
      const error = toFreezeguard(failure);
      health.consecutiveFailures++;
      health.lastErrorAt = context.clock.now();
      health.lastError = { code: error.code, message: error.message };
      // One warning per failure streak; the rest at debug so a long outage does not flood logs.
      if (health.consecutiveFailures === 1) {
        logger.warn(
          { err: error.toJSON() },
          `freezeguard: reading ${o.label} failed, retrying with backoff`,
        );
      } else {
        logger.debug(
          { err: error.toJSON(), streak: health.consecutiveFailures },
          `freezeguard: ${o.label} still failing`,
        );
      }
      try {
        context.onError(error, health.consecutiveFailures);
      } catch {
        // the guard's own handler must not stop polling
      }
      delay = backoffDelay(health.consecutiveFailures, o.intervalMs, o.maxBackoffMs);
      if (error.details.status === 429) delay = Math.max(delay, o.throttledMinMs ?? 1000);
    }
    if (running && mine === generation) timer = context.timers.setTimeout(() => void poll(), delay);
  }

  return {
    get running() {
      return running;
    },
    start(context) {
      if (running) return;
      ctx = context;
      logger = context.logger;
      running = true;
      generation++;
      timer = context.timers.setTimeout(() => void poll(), 0);
    },
    stop() {
      running = false;
      health.readingSince = null;
      if (timer !== null) ctx?.timers.clearTimeout(timer);
      timer = null;
    },
    health() {
      return {
        ...health,
        lastError: health.lastError ? { ...health.lastError } : null,
        requests: o.client.requests,
      };
    },
  };
}
