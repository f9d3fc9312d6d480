/**
 * @freezeguard/bullmq — pause BullMQ workers before a VM freeze, keep the locks of jobs
 * still running alive across it, and resync the clock against Redis before resuming.
 *
 * @example
 * ```ts
 * import { guardWorker } from '@freezeguard/bullmq';
 * const off = guardWorker(guard, worker);
 * ```
 *
 * @module
 */
import {
  assertGuard,
  assertOption,
  awaitClockSync,
  errorSummary,
  type Guard,
  type Participant,
  type PrepareContext,
  type ResumeContext,
  sleep,
  withDefaults,
  withTimeout,
} from '@freezeguard/core';
import type { Job, Worker } from 'bullmq';

/** Options of {@link guardWorker}. */
export interface GuardWorkerOptions {
  /** Deadline of the prepare step: how long to wait for active jobs. Default 20 000 ms. */
  readonly pauseTimeoutMs?: number;
  /** Locks of jobs still running are extended to the freeze length plus this. Default 30 000 ms. */
  readonly lockMarginMs?: number;
  /** Resume once the local clock is within this of Redis `TIME`. Default 500 ms. */
  readonly clockToleranceMs?: number;
  /** Give up waiting for the clock after this long (and say so). Default 10 000 ms. */
  readonly clockSyncTimeoutMs?: number;
  /** A connection that does not answer PING within this is reconnected. Default 2000 ms. */
  readonly pingTimeoutMs?: number;
  /** Participant name. Default `bullmq:<queue name>`. */
  readonly name?: string;
}

/** The registered participant; call it to unregister. */
export type GuardedWorker = (() => void) & Participant;

/** The few ioredis commands used here. */
interface RedisLike {
  time(): Promise<[string, string] | (string | number)[]>;
  ping(): Promise<string>;
  disconnect(reconnect?: boolean): void;
  status?: string;
}

const DEFAULTS = {
  pauseTimeoutMs: 20_000,
  lockMarginMs: 30_000,
  clockToleranceMs: 500,
  clockSyncTimeoutMs: 10_000,
  pingTimeoutMs: 2000,
};
/** How long a freeze lasts when the event does not say. */
const UNKNOWN_FREEZE_MS = 30_000;
/** Locks are re-extended this often while protected, in case a renewal shortened them. */
const REEXTEND_MS = 1000;

/**
 * The worker's main Redis client, in bullmq 5 (`worker.client`) and 6
 * (`worker.getBackend().client`).
 */
async function clientOf(holder: object): Promise<RedisLike> {
  const w = holder as unknown as {
    getBackend?: () => { client: Promise<RedisLike> };
    client?: Promise<RedisLike>;
  };
  const client = typeof w.getBackend === 'function' ? w.getBackend().client : w.client;
  if (!client) throw new Error('cannot reach the worker Redis client');
  return client;
}

/** Reads Redis `TIME` as epoch ms: the reference clock of every worker sharing it. */
async function redisTime(worker: Worker): Promise<number> {
  const [seconds, micros] = await (await clientOf(worker)).time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/**
 * PINGs a BullMQ object's Redis connection; a silent one (half-open after a long freeze)
 * is told to reconnect, until it answers or the resume deadline is near.
 */
async function ensureConnection(
  guard: Guard,
  holder: object,
  ctx: ResumeContext,
  pingTimeoutMs: number,
  label: string,
): Promise<boolean> {
  const logger = guard.logger;
  for (
    let attempt = 0;
    !ctx.signal.aborted && guard.clock.now() < ctx.deadline - pingTimeoutMs;
    attempt++
  ) {
    try {
      const client = await withTimeout(
        guard.timers,
        clientOf(holder),
        pingTimeoutMs,
        'getting the client',
      );
      await withTimeout(guard.timers, client.ping(), pingTimeoutMs, 'PING');
      return true;
    } catch (err) {
      logger.warn(
        { queue: label, attempt, err: errorSummary(err) },
        'freezeguard: Redis did not answer PING; reconnecting',
      );
      try {
        (
          await withTimeout(guard.timers, clientOf(holder), pingTimeoutMs, 'getting the client')
        ).disconnect(true);
      } catch {
        // the client is unreachable too; the next turn tries again
      }
      await sleep(guard.timers, Math.min(1000 * 2 ** attempt, 5000), ctx.signal).catch(() => {});
    }
  }
  return false;
}

/** Options of {@link guardConnections}. */
export interface GuardConnectionsOptions {
  /** Default 2000 ms. */
  readonly pingTimeoutMs?: number;
  /** Participant name. Default `bullmq-connections`. */
  readonly name?: string;
}

/**
 * Checks the Redis connections of `Queue`s and `QueueEvents` the process uses after a
 * freeze, reconnecting any that went stale, as a `work`-phase participant (workers get the
 * same check from {@link guardWorker}). Returns a function that unregisters it.
 *
 * @example
 * ```ts
 * const queue = new Queue('emails', { connection });
 * const events = new QueueEvents('emails', { connection });
 * const off = guardConnections(guard, [queue, events]);
 * ```
 */
export function guardConnections(
  guard: Guard,
  holders: readonly object[],
  options: GuardConnectionsOptions = {},
): () => void {
  assertGuard(guard);
  assertOption(
    Array.isArray(holders),
    'holders',
    'must be an array of BullMQ Queue/QueueEvents',
    holders,
  );
  const pingTimeoutMs = options.pingTimeoutMs ?? DEFAULTS.pingTimeoutMs;
  assertOption(pingTimeoutMs > 0, 'pingTimeoutMs', 'must be > 0', pingTimeoutMs);
  return guard.use({
    name: options.name ?? 'bullmq-connections',
    phase: 'work',
    resume: async (ctx) => {
      await Promise.all(
        holders.map((h) =>
          ensureConnection(guard, h, ctx, pingTimeoutMs, (h as { name?: string }).name ?? 'queue'),
        ),
      );
    },
  });
}

/**
 * Makes a BullMQ worker ride through a freeze as a `work`-phase participant.
 *
 * Prepare: `worker.pause()` (stop taking jobs, wait for active ones) raced against the
 * deadline; jobs still running then get their locks extended with the worker's own
 * tokens to cover the freeze (`DurationInSeconds`, else 30 s) plus `lockMarginMs`, and
 * the worker's own lock renewals use that duration until resume, so another worker's
 * stalled check cannot take them while we are frozen. Resume: wait for the local clock
 * to agree with Redis `TIME`, check the connection (reconnect a stale one), then
 * `worker.resume()` — unless the worker was already paused by you before the event.
 *
 * @example
 * ```ts
 * import { Worker } from 'bullmq';
 * import { createGuard } from '@freezeguard/core';
 * import { guardWorker } from '@freezeguard/bullmq';
 *
 * const guard = createGuard();
 * const worker = new Worker('emails', processor, { connection });
 * const off = guardWorker(guard, worker, { pauseTimeoutMs: 20_000 });
 * await guard.start();
 * // later: off();
 * ```
 */
export function guardWorker(
  guard: Guard,
  worker: Worker,
  options: GuardWorkerOptions = {},
): GuardedWorker {
  assertGuard(guard);
  assertOption(
    worker &&
      typeof worker.pause === 'function' &&
      typeof worker.resume === 'function' &&
      typeof worker.on === 'function',
    'worker',
    'must be a BullMQ Worker',
    worker,
  );
  const o = withDefaults(DEFAULTS, options);
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    assertOption(Number.isFinite(o[key]) && o[key] >= 0, key, 'must be a number ≥ 0', o[key]);
  }
  const logger = () => guard.logger;
  const queue = (worker as unknown as { name?: string }).name ?? 'queue';

  // Jobs this worker holds, with the token its lock was taken with.
  const active = new Map<string, Job>();
  const onActive = (job: Job) => job.id !== undefined && active.set(job.id, job);
  const onDone = (job?: Job) => job?.id !== undefined && active.delete(job.id);
  worker.on('active', onActive);
  worker.on('completed', onDone);
  worker.on('failed', onDone);

  let pausedByUs = false;
  let protection: { timer: unknown; restore: () => void } | null = null;

  const lockSettings = () => {
    const w = worker as unknown as {
      lockManager?: { opts?: { lockDuration: number } };
      opts: { lockDuration?: number };
    };
    // The lock manager renews with its own copy of lockDuration (bullmq ≥ 5.5x); older ones read worker.opts.
    return w.lockManager?.opts ?? w.opts;
  };

  async function extendAll(durationMs: number): Promise<void> {
    await Promise.all(
      [...active.values()].map(async (job) => {
        if (!job.token || job.id === undefined) return;
        try {
          await job.extendLock(job.token, durationMs);
        } catch (err) {
          logger().warn(
            { jobId: job.id, err: errorSummary(err) },
            'freezeguard: extending a BullMQ job lock failed; retrying',
          );
        }
      }),
    );
  }

  function protect(durationMs: number): void {
    if (protection) return;
    const settings = lockSettings();
    const original = settings.lockDuration;
    settings.lockDuration = durationMs;
    const tick = () => {
      void extendAll(durationMs).finally(() => {
        if (protection) protection.timer = guard.timers.setTimeout(tick, REEXTEND_MS);
      });
    };
    protection = {
      timer: guard.timers.setTimeout(tick, REEXTEND_MS),
      restore: () => {
        settings.lockDuration = original;
      },
    };
  }

  function unprotect(): void {
    if (!protection) return;
    guard.timers.clearTimeout(protection.timer);
    protection.restore();
    protection = null;
  }

  async function prepare(ctx: PrepareContext): Promise<void> {
    if (worker.isPaused() && !pausedByUs) {
      logger().info({ queue }, 'freezeguard: worker already paused by the app; leaving it paused');
    } else if (!pausedByUs) {
      pausedByUs = true;
      const paused = worker.pause().then(
        () => true,
        (err: unknown) => {
          logger().warn({ queue, err: errorSummary(err) }, 'freezeguard: worker.pause() failed');
          return false;
        },
      );
      // pause() waits for active jobs with no timeout of its own: keep time to extend locks.
      const budget = Math.max(
        0,
        ctx.deadline - guard.clock.now() - Math.min(2000, o.pauseTimeoutMs / 4),
      );
      const timedOut = sleep(guard.timers, budget, ctx.signal).then(
        () => false,
        () => false,
      );
      await Promise.race([paused, timedOut]);
    }
    if (active.size > 0) {
      const duration = ctx.event.DurationInSeconds ?? -1;
      const cover = (duration > 0 ? duration * 1000 : UNKNOWN_FREEZE_MS) + o.lockMarginMs;
      logger().info(
        { queue, jobs: [...active.keys()], lockMs: cover },
        'freezeguard: jobs still running; extending their locks across the freeze',
      );
      protect(cover);
      await extendAll(cover);
    }
  }

  async function resume(ctx: ResumeContext): Promise<void> {
    unprotect();
    const sync = await awaitClockSync({
      reference: () => redisTime(worker),
      toleranceMs: o.clockToleranceMs,
      timeoutMs: o.clockSyncTimeoutMs,
      clock: guard.clock,
      timers: guard.timers,
      signal: ctx.signal,
    });
    if (sync.inSync)
      logger().debug({ queue, skewMs: sync.skewMs }, 'freezeguard: clock agrees with Redis');
    else
      logger().warn(
        { queue, skewMs: sync.skewMs, err: sync.error?.message },
        'freezeguard: clock still disagrees with Redis TIME; resuming anyway',
      );
    await ensureConnection(guard, worker, ctx, o.pingTimeoutMs, queue);
    if (pausedByUs) {
      pausedByUs = false;
      await Promise.resolve(worker.resume());
      logger().info({ queue, pausedMs: ctx.pausedMs }, 'freezeguard: worker resumed');
    }
  }

  const participant: Participant = {
    name: options.name ?? `bullmq:${queue}`,
    phase: 'work',
    timeoutMs: o.pauseTimeoutMs,
    prepare,
    resume,
  };
  const unregister = guard.use(participant);
  const onClosed = () => off();
  worker.once('closed', onClosed);
  function off(): void {
    unregister();
    unprotect();
    worker.off('active', onActive);
    worker.off('completed', onDone);
    worker.off('failed', onDone);
    worker.off('closed', onClosed);
  }
  // A function's own `name` is read-only: define the participant fields instead of assigning.
  return Object.defineProperties(off, {
    name: { value: participant.name },
    phase: { value: participant.phase, enumerable: true },
    timeoutMs: { value: participant.timeoutMs, enumerable: true },
    prepare: { value: prepare, enumerable: true },
    resume: { value: resume, enumerable: true },
  }) as GuardedWorker;
}
