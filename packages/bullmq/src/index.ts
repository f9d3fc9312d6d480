/**
 * @freezeguard/bullmq — pause BullMQ workers before a VM freeze, keep the locks of jobs
 * still running alive across it, and resync the clock against Redis before resuming.
 *
 * @example
 * ```ts
 * import { guardWorker } from '@freezeguard/bullmq';
 * const handle = guardWorker(guard, worker);
 * ```
 *
 * @module
 */
import {
  awaitClockSync,
  FreezeguardError,
  type Guard,
  type Participant,
  type PrepareContext,
  type ResumeContext,
} from '@freezeguard/core';
import {
  type AdapterHandle,
  assertGuard,
  assertOption,
  registerParticipant,
  sleep,
  toError,
  withDefaults,
} from '@freezeguard/core/adapter';
import type { Job, Worker } from 'bullmq';
import { clientOf, ensureConnection, NoRedisClient, redisTime } from './redis.js';

/** Options of {@link guardWorker}. */
export interface GuardWorkerOptions {
  /** Deadline of the prepare step: how long to wait for active jobs. Default 20 000 ms. */
  readonly pauseTimeoutMs?: number;
  /**
   * Deadline of the resume step (clock sync, connection check, `worker.resume()`).
   * Default: the guard's `resumeTimeoutMs`. Keep it above `clockSyncTimeoutMs`.
   */
  readonly resumeTimeoutMs?: number;
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
/** Marks a worker some guard already guards (a symbol shared by every copy of this package). */
const GUARDED = Symbol.for('@freezeguard/bullmq.guarded');

/** Options of {@link guardConnections}. */
export interface GuardConnectionsOptions {
  /** Default 2000 ms. */
  readonly pingTimeoutMs?: number;
  /** Participant name. Default `bullmq-connections`. */
  readonly name?: string;
}

/**
 * Checks the Redis connections of `Queue`s (and other non-blocking BullMQ objects) the
 * process uses after a freeze, reconnecting any that went stale; `QueueEvents` may be
 * listed too (their blocking read is left to reconnect by itself), as a `work`-phase participant (workers get the
 * same check from {@link guardWorker}). A connection still silent at the resume deadline
 * makes the resume fail (reported in `guard.status()`). Returns the adapter handle.
 *
 * @example
 * ```ts
 * const queue = new Queue('emails', { connection });
 * const events = new QueueEvents('emails', { connection });
 * const handle = guardConnections(guard, [queue, events]);
 * ```
 */
export function guardConnections(
  guard: Guard,
  holders: readonly object[],
  options: GuardConnectionsOptions = {},
): AdapterHandle {
  assertGuard(guard);
  assertOption(
    Array.isArray(holders),
    'holders',
    'must be an array of BullMQ Queue/QueueEvents',
    holders,
  );
  const pingTimeoutMs = options.pingTimeoutMs ?? DEFAULTS.pingTimeoutMs;
  assertOption(pingTimeoutMs > 0, 'pingTimeoutMs', 'must be > 0', pingTimeoutMs);
  const label = (h: object) => (h as { name?: string }).name ?? 'queue';
  // A QueueEvents connection sits in XREAD BLOCK (up to `blockingTimeout`, 10 s): a PING
  // queues behind it and would time out on a healthy connection, so it is not pinged; the
  // blocking read itself fails and reconnects on a dead one.
  const blocking = (h: object) =>
    typeof (h as { opts?: { blockingTimeout?: unknown } }).opts?.blockingTimeout === 'number';
  return registerParticipant(guard, {
    name: options.name ?? 'bullmq-connections',
    phase: 'work',
    resume: async (ctx: ResumeContext) => {
      const answered = await Promise.all(
        holders.map((h) =>
          blocking(h) ? true : ensureConnection(guard, h, ctx, pingTimeoutMs, label(h)),
        ),
      );
      const silent = holders.filter((_, i) => !answered[i]).map(label);
      if (silent.length > 0)
        throw new FreezeguardError(
          'ERR_PARTICIPANT_FAILED',
          `Redis did not answer PING before the resume deadline for ${silent.join(', ')}`,
          { details: { queues: silent } },
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
 * `worker.resume()` — unless the worker was already paused by you before the event. A
 * degraded resume (clock still off, Redis silent) still resumes the worker, and is
 * reported as an error of the participant. One guard per worker: a second call throws.
 *
 * @example
 * ```ts
 * import { Worker } from 'bullmq';
 * import { createGuard } from '@freezeguard/core';
 * import { guardWorker } from '@freezeguard/bullmq';
 *
 * const guard = createGuard();
 * const worker = new Worker('emails', processor, { connection });
 * const handle = guardWorker(guard, worker, { pauseTimeoutMs: 20_000 });
 * await guard.start();
 * // later: handle.close();
 * ```
 */
export function guardWorker(
  guard: Guard,
  worker: Worker,
  options: GuardWorkerOptions = {},
): AdapterHandle {
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
  const marks = worker as unknown as Record<symbol, boolean | undefined>;
  assertOption(
    !marks[GUARDED],
    'worker',
    'is already guarded (guardWorker was called twice for it; close() the first handle first)',
    worker,
  );
  const o = withDefaults(DEFAULTS, options);
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    assertOption(Number.isFinite(o[key]) && o[key] >= 0, key, 'must be a number ≥ 0', o[key]);
  }
  if (options.resumeTimeoutMs !== undefined)
    assertOption(
      Number.isFinite(options.resumeTimeoutMs) && options.resumeTimeoutMs > 0,
      'resumeTimeoutMs',
      'must be a number > 0',
      options.resumeTimeoutMs,
    );
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
            { queue, jobId: job.id, err: toError(err) },
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
          logger().warn({ queue, err: toError(err) }, 'freezeguard: worker.pause() failed');
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
      const duration = ctx.event.durationSeconds ?? -1;
      const cover = (duration > 0 ? duration * 1000 : UNKNOWN_FREEZE_MS) + o.lockMarginMs;
      logger().info(
        { queue, jobs: [...active.keys()], lockMs: cover },
        'freezeguard: jobs still running; extending their locks across the freeze',
      );
      protect(cover);
      await extendAll(cover);
    }
  }

  const syncClock = (ctx: ResumeContext, timeoutMs: number) =>
    awaitClockSync({
      reference: () => redisTime(worker),
      toleranceMs: o.clockToleranceMs,
      timeoutMs,
      clock: guard.clock,
      timers: guard.timers,
      signal: ctx.signal,
    });

  async function resume(ctx: ResumeContext): Promise<void> {
    unprotect();
    // BullMQ's PostgreSQL backend has no Redis: no TIME to agree with, no PING to send.
    const redis = await clientOf(worker).then(
      () => true,
      (err: unknown) => !(err instanceof NoRedisClient),
    );
    let sync = redis ? await syncClock(ctx, o.clockSyncTimeoutMs) : null;
    const connected = redis
      ? await ensureConnection(guard, worker, ctx, o.pingTimeoutMs, queue)
      : true;
    // Redis may have been unreachable for the first sync and back now: measure again.
    if (sync && !sync.inSync && connected) {
      const left = ctx.deadline - guard.clock.now() - o.pingTimeoutMs;
      if (left > 0) sync = await syncClock(ctx, Math.min(o.clockSyncTimeoutMs, left));
    }
    if (sync?.inSync)
      logger().debug({ queue, skewMs: sync.skewMs }, 'freezeguard: clock agrees with Redis');
    if (pausedByUs) {
      pausedByUs = false;
      await Promise.resolve(worker.resume());
      logger().info({ queue, pausedMs: ctx.pausedMs }, 'freezeguard: worker resumed');
    }
    // Degraded, but a paused worker helps nobody: it was resumed above; the guard reports this.
    if (!connected)
      throw new FreezeguardError(
        'ERR_PARTICIPANT_FAILED',
        `${queue}: Redis did not answer PING before the resume deadline; the worker was resumed anyway`,
        { details: { queue } },
      );
    if (sync && !sync.inSync)
      throw new FreezeguardError(
        'ERR_CLOCK_SYNC',
        `${queue}: the local clock still disagrees with Redis TIME (skew ${Math.round(sync.skewMs)} ms); the worker was resumed anyway`,
        { cause: sync.error, details: { queue, skewMs: sync.skewMs } },
      );
  }

  const participant: Participant = {
    name: options.name ?? `bullmq:${queue}`,
    phase: 'work',
    prepareTimeoutMs: o.pauseTimeoutMs,
    ...(options.resumeTimeoutMs === undefined ? {} : { resumeTimeoutMs: options.resumeTimeoutMs }),
    prepare,
    resume,
  };
  const onClosed = () => handle.close();
  marks[GUARDED] = true;
  const handle = registerParticipant(guard, participant, () => {
    unprotect();
    worker.off('active', onActive);
    worker.off('completed', onDone);
    worker.off('failed', onDone);
    worker.off('closed', onClosed);
    marks[GUARDED] = undefined;
  });
  worker.once('closed', onClosed);
  return handle;
}
