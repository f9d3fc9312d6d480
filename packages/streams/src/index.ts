/**
 * @freezeguard/streams — flush buffered data before a VM freeze and hand long-lived
 * HTTP streams over to healthy instances.
 *
 * @example
 * ```ts
 * import { guardWritable, guardFlushable, guardResponseStreams } from '@freezeguard/streams';
 * guardWritable(guard, auditLog, { name: 'audit-log', fsync: true });
 * ```
 *
 * @module
 */
import { fsync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { Guard, PrepareContext, ResumeContext } from '@freezeguard/core';
import {
  type AdapterHandle,
  assertGuard,
  assertOption,
  registerParticipant,
  sleep,
} from '@freezeguard/core/adapter';

/** What producers learn after a freeze, to mark the discontinuity in their own data. */
export interface ResumeInfo {
  readonly pausedMs: number;
  readonly clockStepMs: number;
  readonly cancelled: boolean;
}

/** Options of {@link guardWritable}. */
export interface GuardWritableOptions {
  /** Participant name (shown in `guard.status()`). */
  readonly name: string;
  /** fsync the stream's file descriptor after flushing. Default false. */
  readonly fsync?: boolean;
  /** Called after the freeze with how long it was. */
  readonly onResume?: (info: ResumeInfo) => unknown;
}

/** Options of {@link guardFlushable}. */
export interface GuardFlushableOptions {
  readonly name: string;
  /** Writes out whatever is buffered. */
  readonly flush: () => unknown;
  /** Called for events the VM does not survive, after `flush`. */
  readonly close?: () => unknown;
  readonly onResume?: (info: ResumeInfo) => unknown;
}

type FlushFn = (callback?: (err?: Error | null) => void) => unknown;

const POLL_MS = 10;

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

/** Calls a stream's own flush (zlib, sonic-boom, pino…), with or without a callback. */
async function ownFlush(stream: Writable): Promise<void> {
  const flush = (stream as unknown as { flush?: FlushFn }).flush;
  if (typeof flush !== 'function') return;
  if (flush.length === 0) {
    await flush.call(stream);
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const result = flush.call(stream, (err) => (err ? reject(err) : resolve()));
    if (result && typeof (result as Promise<unknown>).then === 'function')
      (result as Promise<unknown>).then(() => resolve(), reject);
  });
}

/**
 * Resolves once the stream has handed every buffered byte on; rejects on error or abort.
 * `drain` only fires after a write was refused, so `writableLength` is polled too; one
 * `drain` listener serves the whole wait and is removed at the end.
 */
async function drained(guard: Guard, stream: Writable, signal: AbortSignal): Promise<void> {
  let wake: () => void = () => {};
  const onDrain = () => wake();
  stream.on('drain', onDrain);
  try {
    while (stream.writableLength > 0) {
      if (stream.destroyed)
        throw new Error(`stream destroyed with ${stream.writableLength} bytes unwritten`);
      if (signal.aborted) throw abortError(signal);
      const controller = new AbortController();
      const stopPoll = () => controller.abort();
      signal.addEventListener('abort', stopPoll, { once: true });
      try {
        await Promise.race([
          new Promise<void>((resolve) => {
            wake = resolve;
          }),
          sleep(guard.timers, POLL_MS, controller.signal).catch(() => {}),
        ]);
      } finally {
        signal.removeEventListener('abort', stopPoll);
        controller.abort();
      }
    }
  } finally {
    stream.off('drain', onDrain);
  }
}

function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
}

function resumeInfo(ctx: ResumeContext): ResumeInfo {
  return { pausedMs: ctx.pausedMs, clockStepMs: ctx.clockStepMs, cancelled: ctx.cancelled };
}

/**
 * Flushes a Node `Writable` (file, socket, zlib, sonic-boom…) as a `data`-phase
 * participant: calls the stream's own `flush` when it has one, waits until
 * `writableLength` is 0, and with `fsync: true` fsyncs its file descriptor. For events the
 * VM does not survive it also ends the stream. Errors and destroyed streams are reported
 * in `guard.status()`, never thrown at the app. Returns the adapter handle
 * (`participant`, `close()`).
 *
 * @example
 * ```ts
 * const audit = createWriteStream('/var/log/app/audit.log', { flags: 'a' });
 * guardWritable(guard, audit, {
 *   name: 'audit-log',
 *   fsync: true,
 *   onResume: ({ pausedMs }) => audit.write(`# paused ${pausedMs} ms\n`),
 * });
 * ```
 */
export function guardWritable(
  guard: Guard,
  stream: Writable,
  options: GuardWritableOptions,
): AdapterHandle {
  assertGuard(guard);
  assertOption(
    stream && typeof stream.write === 'function',
    'stream',
    'must be a Writable',
    stream,
  );
  assertOption(
    typeof options?.name === 'string' && options.name !== '',
    'name',
    'must be a non-empty string',
    options?.name,
  );
  return registerParticipant(guard, {
    name: options.name,
    phase: 'data',
    async prepare(ctx: PrepareContext) {
      if (stream.destroyed) throw new Error(`${options.name}: stream already destroyed`);
      // A stream error while we wait must reach us, not crash a process with no listener.
      let failure: Error | null = null;
      const onError = (err: Error) => {
        failure = err;
      };
      stream.on('error', onError);
      try {
        await ownFlush(stream);
        await drained(guard, stream, ctx.signal);
        const fd = (stream as unknown as { fd?: unknown }).fd;
        if (options.fsync && typeof fd === 'number') await fsyncFd(fd);
        if (ctx.shutdown && !stream.writableEnded) {
          await new Promise<void>((resolve) => stream.end(resolve));
        }
        if (failure) throw failure;
      } finally {
        stream.off('error', onError);
      }
    },
    async resume(ctx: ResumeContext) {
      await options.onResume?.(resumeInfo(ctx));
    },
  });
}

/**
 * The same contract as {@link guardWritable} for anything with an async `flush()` — an
 * OpenTelemetry span processor, a metrics batcher, a custom buffer.
 *
 * @example
 * ```ts
 * guardFlushable(guard, { name: 'otel', flush: () => spanProcessor.forceFlush(), close: () => spanProcessor.shutdown() });
 * ```
 */
export function guardFlushable(guard: Guard, options: GuardFlushableOptions): AdapterHandle {
  assertGuard(guard);
  assertOption(
    typeof options?.name === 'string' && options.name !== '',
    'name',
    'must be a non-empty string',
    options?.name,
  );
  assertOption(typeof options.flush === 'function', 'flush', 'must be a function', options.flush);
  return registerParticipant(guard, {
    name: options.name,
    phase: 'data',
    async prepare(ctx: PrepareContext) {
      // A flush that ignores cancellation must not hold the cycle: stop waiting when the
      // guard aborts (the flush itself runs on).
      await untilAborted(Promise.resolve(options.flush()), ctx.signal);
      if (ctx.shutdown && !ctx.signal.aborted)
        await untilAborted(Promise.resolve(options.close?.()), ctx.signal);
    },
    async resume(ctx: ResumeContext) {
      await options.onResume?.(resumeInfo(ctx));
    },
  });
}

/** Resolves with `work`, or as soon as `signal` aborts (`work` is left to finish). */
function untilAborted(work: Promise<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Whether a response is an SSE stream. Headers given to `writeHead()` never show in
 * `getHeader()`, so the header block already sent is read as well.
 */
function isEventStream(res: ServerResponse): boolean {
  const type = res.getHeader('content-type');
  if (type !== undefined) return String(type).toLowerCase().startsWith('text/event-stream');
  const sent = (res as unknown as { _header?: string | null })._header;
  return typeof sent === 'string' && /\r\ncontent-type:\s*text\/event-stream/i.test(sent);
}

/** Options of {@link guardResponseStreams}. */
export interface GuardResponseStreamsOptions {
  /** The `retry:` hint sent to SSE clients before ending their stream. Default 1000 ms. */
  readonly retryMs?: number;
  /** Participant name. Default `response-streams`. */
  readonly name?: string;
}

/** How to hand one tracked response over. */
export interface TrackOptions {
  /** Treat it as server-sent events. Default: detected from its `Content-Type`. */
  readonly sse?: boolean;
  /** Ends a non-SSE stream at a safe boundary of yours; default: `res.end()`. */
  readonly onDrain?: (res: ServerResponse) => unknown;
}

/** Long-lived responses being tracked; also the adapter handle (`participant`, `close()`). */
export interface ResponseStreams extends AdapterHandle {
  /** Tracks a response until it ends. Returns it. */
  track<R extends ServerResponse>(res: R, options?: TrackOptions): R;
  /** Responses tracked right now. */
  readonly size: number;
}

/**
 * Hands long-lived HTTP responses (server-sent events, chunked media, long polls) over
 * before a freeze, as a `traffic`-phase participant: every tracked SSE response
 * (`Content-Type: text/event-stream`) gets `retry: <retryMs>` and is ended cleanly so the
 * client's EventSource reconnects — through the load balancer, to a healthy instance;
 * other streams get their `onDrain` (or are ended). Responses tracked while the guard is
 * draining are handed over at once. Finished responses are untracked by themselves.
 * Works with plain `http`, Express `res` and Fastify `reply.raw`.
 *
 * @example
 * ```ts
 * const streams = guardResponseStreams(guard, { retryMs: 1000 });
 * app.get('/events', (req, res) => {
 *   res.writeHead(200, { 'Content-Type': 'text/event-stream' });
 *   streams.track(res);
 * });
 * ```
 */
export function guardResponseStreams(
  guard: Guard,
  options: GuardResponseStreamsOptions = {},
): ResponseStreams {
  assertGuard(guard);
  const retryMs = options.retryMs ?? 1000;
  assertOption(
    Number.isInteger(retryMs) && retryMs >= 0,
    'retryMs',
    'must be an integer ≥ 0',
    retryMs,
  );
  const tracked = new Map<ServerResponse, TrackOptions>();

  async function handOver(res: ServerResponse, opts: TrackOptions): Promise<void> {
    if (res.writableEnded || res.destroyed) return;
    if (opts.sse ?? isEventStream(res)) {
      res.end(`retry: ${retryMs}\n\n`);
    } else if (opts.onDrain) {
      await opts.onDrain(res);
    } else {
      res.end();
    }
  }

  const finished = (res: ServerResponse) =>
    new Promise<void>((resolve) => {
      if (res.writableFinished || res.destroyed) return resolve();
      res.once('finish', () => resolve());
      res.once('close', () => resolve());
    });

  const handle = registerParticipant(guard, {
    name: options.name ?? 'response-streams',
    phase: 'traffic',
    async prepare(ctx: PrepareContext) {
      const list = [...tracked];
      await Promise.all(list.map(([res, opts]) => handOver(res, opts)));
      let onAbort = () => {};
      try {
        await Promise.race([
          Promise.all(list.map(([res]) => finished(res))),
          new Promise((_, reject) => {
            onAbort = () => reject(abortError(ctx.signal));
            if (ctx.signal.aborted) onAbort();
            else ctx.signal.addEventListener('abort', onAbort, { once: true });
          }),
        ]);
      } finally {
        ctx.signal.removeEventListener('abort', onAbort);
      }
    },
  });

  return {
    track(res, opts = {}) {
      tracked.set(res, opts);
      const untrack = () => tracked.delete(res);
      res.once('close', untrack);
      res.once('finish', untrack);
      if (!guard.isReady()) void Promise.resolve(handOver(res, opts)).catch(() => {});
      return res;
    },
    get size() {
      return tracked.size;
    },
    participant: handle.participant,
    close: handle.close,
  };
}
