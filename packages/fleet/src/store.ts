import type { Logger, Timers } from '@freezeguard/core';
import { errorSummary, withTimeout } from '@freezeguard/core/adapter';
import { fleetLogger } from './log.js';
import type { Script } from './scripts.js';

/**
 * The part of an ioredis client the fleet uses. Structural on purpose: a client of
 * ioredis 5 and one of ioredis 6 are both accepted (their classes differ nominally).
 */
export interface RedisLike {
  duplicate(...args: unknown[]): RedisConnection;
  /** `true` on an ioredis `Cluster`, whose `duplicate()` takes startup nodes first. */
  readonly isCluster?: boolean;
  /** A Cluster's own options: its `redisOptions` carry the nodes' auth and TLS. */
  readonly options?: object;
}

/** A connection the fleet opened with `duplicate()`; it owns it and closes it on stop. */
export interface RedisConnection {
  readonly status: string;
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  get(key: string): Promise<string | null>;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}

// Our own connections fail fast instead of queueing: a command queued while Redis is
// away would run on reconnect, long after we answered `unavailable` (a slot granted to
// a member that believes it has none). The user's options (host, auth, TLS, db) are kept.
const COMMAND_OVERRIDES = {
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 1,
  lazyConnect: false,
  keyPrefix: '',
  retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
  reconnectOnError: null,
};
const SUBSCRIBER_OVERRIDES = { ...COMMAND_OVERRIDES, enableOfflineQueue: true };

/**
 * One connection of the fleet's own, from the app's client as a template. A `Cluster`'s
 * `duplicate(startupNodes, options)` would take a lone options object as startup nodes
 * and drop it, and it keeps per-node settings (auth, TLS, retries) in `redisOptions`,
 * merged shallowly: so the overrides are split between the two levels, over the app's own.
 */
export function openConnection(
  redis: RedisLike,
  overrides: typeof COMMAND_OVERRIDES & { readonly connectionName: string },
): RedisConnection {
  if (redis.isCluster !== true) return redis.duplicate(overrides);
  const { retryStrategy, maxRetriesPerRequest, autoResendUnfulfilledCommands, reconnectOnError } =
    overrides;
  return redis.duplicate([], {
    enableOfflineQueue: overrides.enableOfflineQueue,
    lazyConnect: overrides.lazyConnect,
    keyPrefix: overrides.keyPrefix,
    clusterRetryStrategy: retryStrategy,
    redisOptions: {
      ...(redis.options as { redisOptions?: Record<string, unknown> } | undefined)?.redisOptions,
      maxRetriesPerRequest,
      autoResendUnfulfilledCommands,
      reconnectOnError,
      connectionName: overrides.connectionName,
    },
  });
}

/** What happened to one Redis operation. */
export type OpResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: Error };

/**
 * The fleet's two Redis connections (commands, subscriptions) with bounded operations:
 * every call answers within `opTimeoutMs`, never throws, and feeds one connected/failed
 * state that is logged once per failure streak.
 */
export class FleetStore {
  readonly #conn: RedisConnection;
  readonly #sub: RedisConnection;
  readonly #logger: Logger;
  readonly #timers: Timers;
  readonly #opTimeoutMs: number;
  readonly #handlers = new Map<string, Set<(message: string) => void>>();
  // Settles once Redis confirmed the SUBSCRIBE: what is published after that is delivered.
  readonly #subscribed = new Map<string, Promise<void>>();
  readonly #onUp: () => void;
  #connected = false;
  #everConnected = false;
  #streak = 0;
  #lastError: string | null = null;
  #closed = false;

  constructor(
    redis: RedisLike,
    options: {
      readonly logger: Logger;
      readonly timers: Timers;
      readonly opTimeoutMs: number;
      readonly name: string;
      /** Called when Redis answers again after failing (the member re-registers). */
      readonly onUp: () => void;
    },
  ) {
    this.#logger = fleetLogger(options.logger);
    this.#timers = options.timers;
    this.#opTimeoutMs = options.opTimeoutMs;
    this.#onUp = options.onUp;
    this.#conn = openConnection(redis, { ...COMMAND_OVERRIDES, connectionName: options.name });
    this.#sub = openConnection(redis, {
      ...SUBSCRIBER_OVERRIDES,
      connectionName: `${options.name}:sub`,
    });
    // An 'error' event without a listener would crash the app; failures are accounted
    // per operation instead.
    const quiet = (err: unknown) =>
      this.#logger.debug({ err: errorSummary(err) }, 'freezeguard: Redis connection error');
    this.#conn.on('error', quiet);
    this.#sub.on('error', quiet);
    this.#sub.on('message', ((channel: string, message: string) => {
      for (const handler of this.#handlers.get(channel) ?? []) {
        try {
          handler(message);
        } catch (err) {
          this.#logger.warn({ err: errorSummary(err) }, 'freezeguard: handler failed');
        }
      }
    }) as (...args: unknown[]) => void);
  }

  get connected(): boolean {
    return this.#connected;
  }

  get lastError(): string | null {
    return this.#lastError;
  }

  /** Runs a script (EVALSHA, falling back to EVAL after a Redis restart). */
  run<T = unknown>(
    script: Script,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<OpResult<T>> {
    return this.op(script.name, async () => {
      try {
        return (await this.#conn.evalsha(script.sha, keys.length, ...keys, ...args)) as T;
      } catch (err) {
        if (!String((err as Error)?.message).includes('NOSCRIPT')) throw err;
        return (await this.#conn.eval(script.body, keys.length, ...keys, ...args)) as T;
      }
    });
  }

  get(key: string): Promise<OpResult<string | null>> {
    return this.op('get', () => this.#conn.get(key));
  }

  /** Sends a script without waiting or accounting: a compensation queued behind a timed-out call. */
  fireAndForget(script: Script, keys: readonly string[], args: readonly (string | number)[]): void {
    if (this.#closed || this.#conn.status !== 'ready') return;
    this.#conn
      .evalsha(script.sha, keys.length, ...keys, ...args)
      .catch(() => this.#conn.eval(script.body, keys.length, ...keys, ...args))
      .catch(() => {});
  }

  /** Delivers every message of `channel` to `handler` (re-subscribed after reconnects). */
  subscribe(channel: string, handler: (message: string) => void): () => void {
    let set = this.#handlers.get(channel);
    if (!set) {
      set = new Set();
      this.#handlers.set(channel, set);
      this.#subscribed.set(
        channel,
        this.#subReady()
          .then(() => (this.#handlers.has(channel) ? this.#sub.subscribe(channel) : undefined))
          .then(
            () => {},
            () => {},
          ),
      );
    }
    set.add(handler);
    return () => {
      const current = this.#handlers.get(channel);
      current?.delete(handler);
      if (current && current.size === 0 && !this.#closed) {
        this.#handlers.delete(channel);
        this.#subscribed.delete(channel);
        this.#sub.unsubscribe(channel).catch(() => {});
      }
    };
  }

  /**
   * Resolves once the subscription to `channel` is active (or failed): a read of state
   * after it cannot miss a message published between the two.
   */
  subscribed(channel: string): Promise<void> {
    return this.#subscribed.get(channel) ?? Promise.resolve();
  }

  /** Bounded operation: waits for the connection up to the timeout, never rejects. */
  async op<T>(what: string, fn: () => Promise<T>): Promise<OpResult<T>> {
    if (this.#closed) return { ok: false, error: new Error('fleet stopped') };
    const started = performance.now();
    try {
      await this.#ready();
      const left = Math.max(1, this.#opTimeoutMs - (performance.now() - started));
      const value = await withTimeout(this.#timers, fn(), left, `Redis ${what}`);
      this.#succeeded();
      return { ok: true, value };
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.#failed(what, error);
      return { ok: false, error };
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.clear();
    for (const c of [this.#conn, this.#sub]) {
      if (c.status === 'ready') {
        await withTimeout(this.#timers, c.quit(), this.#opTimeoutMs, 'Redis QUIT').catch(() => {});
      }
      c.disconnect();
    }
  }

  // ioredis writes a SUBSCRIBE issued while it connects before its ready check (INFO),
  // which Redis then refuses in subscriber mode: the connection is reset, the
  // subscription lost until a later reconnect, and a follower hears nothing (only its
  // periodic catch-up read). So the first SUBSCRIBE waits for the ready connection;
  // ioredis re-subscribes by itself after a reconnect, once ready.
  #subReady(): Promise<void> {
    if (this.#sub.status === 'ready') return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#sub.once('ready', () => resolve());
    });
  }

  #ready(): Promise<void> {
    if (this.#conn.status === 'ready') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onReady = () => {
        this.#timers.clearTimeout(timer);
        resolve();
      };
      const timer = this.#timers.setTimeout(() => {
        this.#conn.removeListener('ready', onReady);
        reject(new Error(`Redis not connected (${this.#conn.status})`));
      }, this.#opTimeoutMs);
      this.#conn.once('ready', onReady);
    });
  }

  #succeeded(): void {
    if (this.#connected) return;
    this.#connected = true;
    const wasDown = this.#streak > 0 || this.#everConnected;
    this.#everConnected = true;
    if (this.#streak > 0) {
      this.#logger.info(
        { failures: this.#streak },
        'freezeguard: Redis reachable again; re-registering',
      );
    }
    this.#streak = 0;
    this.#lastError = null;
    if (wasDown) {
      try {
        this.#onUp();
      } catch {
        // a listener's failure must not turn a success into a failure
      }
    }
  }

  #failed(what: string, error: Error): void {
    this.#connected = false;
    this.#streak++;
    this.#lastError = `${what}: ${error.message}`;
    if (this.#streak === 1) {
      this.#logger.warn(
        { err: errorSummary(error), op: what },
        'freezeguard: Redis unavailable; acting solo until it answers again',
      );
    } else {
      this.#logger.debug(
        { err: errorSummary(error), op: what, streak: this.#streak },
        'freezeguard: Redis still unavailable',
      );
    }
  }
}
