// The Redis side of guarding BullMQ: its client (whatever kind BullMQ uses), Redis TIME as
// the reference clock, and a PING that reconnects a connection a long freeze left half-open.
import type { Guard, ResumeContext } from '@freezeguard/core';
import { sleep, toError, withTimeout } from '@freezeguard/core/adapter';

/**
 * The Redis client BullMQ gives us: an ioredis instance in bullmq 5; in bullmq 6 its own
 * client interface (over ioredis, node-redis, Valkey GLIDE or Bun's client), which has
 * no `time()`/`ping()` but runs Lua scripts through `defineCommand`/`runCommand`.
 */
interface BullClient {
  defineCommand?(name: string, definition: { numberOfKeys: number; lua: string }): void;
  runCommand?(name: string, args: unknown[]): Promise<unknown>;
  time?(): Promise<unknown>;
  ping?(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
}

/** A backend with no Redis client (BullMQ's PostgreSQL backend): nothing to check. */
export class NoRedisClient extends Error {}

/**
 * The main Redis client of a BullMQ Worker/Queue/QueueEvents: `getBackend().client` in
 * bullmq 6, `.client` in bullmq 5.
 */
export async function clientOf(holder: object): Promise<BullClient> {
  const h = holder as {
    getBackend?: () => { client?: Promise<BullClient> } | undefined;
    client?: Promise<BullClient>;
  };
  const client = typeof h.getBackend === 'function' ? h.getBackend()?.client : h.client;
  if (!client) throw new NoRedisClient('this BullMQ backend has no Redis client');
  return client;
}

const TIME_SCRIPT = 'freezeguardTime';
const PING_SCRIPT = 'freezeguardPing';
const scriptsDefined = new WeakSet<object>();

/**
 * Runs `TIME` or `PING` through whatever client BullMQ uses: the command itself where the
 * client has it (ioredis), else a one-line Lua script through BullMQ's own `runCommand`
 * (its node-redis, GLIDE and Bun adapters have no `time()`/`ping()`).
 */
async function command(client: BullClient, which: 'time' | 'ping'): Promise<unknown> {
  const native = client[which];
  if (typeof native === 'function') return native.call(client);
  if (typeof client.runCommand !== 'function' || typeof client.defineCommand !== 'function')
    throw new Error(`the BullMQ Redis client offers neither ${which}() nor runCommand()`);
  if (!scriptsDefined.has(client)) {
    client.defineCommand(TIME_SCRIPT, { numberOfKeys: 0, lua: "return redis.call('TIME')" });
    client.defineCommand(PING_SCRIPT, { numberOfKeys: 0, lua: "return redis.call('PING')" });
    scriptsDefined.add(client);
  }
  return client.runCommand(which === 'time' ? TIME_SCRIPT : PING_SCRIPT, []);
}

/** Reads Redis `TIME` as epoch ms: the reference clock of every worker sharing it. */
export async function redisTime(holder: object): Promise<number> {
  const reply = await command(await clientOf(holder), 'time');
  if (!Array.isArray(reply) || reply.length < 2)
    throw new Error(`unexpected TIME reply ${JSON.stringify(reply)}`);
  const ms = Number(String(reply[0])) * 1000 + Math.floor(Number(String(reply[1])) / 1000);
  if (!Number.isFinite(ms)) throw new Error(`unexpected TIME reply ${JSON.stringify(reply)}`);
  return ms;
}

/**
 * PINGs a BullMQ object's Redis connection; a silent one (half-open after a long freeze)
 * is told to reconnect, until it answers or the resume deadline is near. True when it
 * answered (or the backend has no Redis connection to check).
 */
export async function ensureConnection(
  guard: Guard,
  holder: object,
  ctx: ResumeContext,
  pingTimeoutMs: number,
  label: string,
): Promise<boolean> {
  const logger = guard.logger;
  for (let attempt = 0; !ctx.signal.aborted; attempt++) {
    // The first PING always happens, bounded by what is left of the resume deadline; a
    // retry only when a whole pingTimeoutMs still fits.
    const left = ctx.deadline - guard.clock.now();
    if (attempt > 0 && left < pingTimeoutMs) break;
    const timeoutMs = Math.max(100, Math.min(pingTimeoutMs, left));
    try {
      const client = await withTimeout(
        guard.timers,
        clientOf(holder),
        timeoutMs,
        'getting the client',
      );
      await withTimeout(guard.timers, command(client, 'ping'), timeoutMs, 'PING');
      return true;
    } catch (err) {
      if (err instanceof NoRedisClient) return true;
      logger.warn(
        { queue: label, attempt, err: toError(err) },
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
