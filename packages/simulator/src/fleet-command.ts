import { parseArgs } from 'node:util';

/** The parts of `@freezeguard/fleet` and `ioredis` the command uses (both optional). */
interface FleetModule {
  readFleet(
    redis: unknown,
    options: { group: string; keyPrefix?: string; timeoutMs?: number },
  ): Promise<{ group: string; at: number; members: readonly unknown[] }>;
  formatFleetTable(snapshot: unknown): string;
}
interface RedisClient {
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'ready', listener: () => void): unknown;
  disconnect(): void;
}
type RedisCtor = new (url: string, options: Record<string, unknown>) => RedisClient;

/** A usage mistake: the CLI prints it with the usage text and exits 64. */
export class FleetUsageError extends Error {}

async function load(): Promise<{ fleet: FleetModule; Redis: RedisCtor }> {
  // Specifiers in variables: the simulator must build and run without these packages.
  const fleetName = '@freezeguard/fleet';
  const redisName = 'ioredis';
  let fleet: FleetModule;
  let Redis: RedisCtor;
  try {
    fleet = (await import(fleetName)) as FleetModule;
  } catch {
    throw new Error(
      'freezeguard fleet needs @freezeguard/fleet: npm install @freezeguard/fleet ioredis',
    );
  }
  try {
    const mod = (await import(redisName)) as { Redis?: RedisCtor; default?: RedisCtor };
    Redis = (mod.Redis ?? mod.default) as RedisCtor;
  } catch {
    throw new Error('freezeguard fleet needs ioredis: npm install ioredis');
  }
  return { fleet, Redis };
}

/**
 * `freezeguard fleet --redis URL --group NAME [--key-prefix P] [--interval 1s] [--once] [--json]`:
 * a live table of a group's members, their states, who holds drain slots and who polls
 * the metadata service. Exit code 2 when Redis cannot be read.
 */
export async function fleetCommand(
  argv: string[],
  parseDuration: (text: string, option: string) => number,
): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      redis: { type: 'string', default: process.env.REDIS_URL },
      group: { type: 'string', default: process.env.FREEZEGUARD_FLEET_GROUP },
      'key-prefix': { type: 'string', default: 'freezeguard:' },
      interval: { type: 'string', default: '1s' },
      once: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.redis) throw new FleetUsageError('fleet: --redis URL is required (or REDIS_URL)');
  if (!values.group)
    throw new FleetUsageError('fleet: --group NAME is required (or FREEZEGUARD_FLEET_GROUP)');
  const intervalMs = parseDuration(values.interval, 'interval');
  const { fleet, Redis } = await load();
  const redis = new Redis(values.redis, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
  });
  let lastError = '';
  redis.on('error', (err) => {
    lastError = err.message;
  });
  const group = values.group;
  const live = !values.once && !values.json && process.stdout.isTTY;
  const show = async (): Promise<boolean> => {
    try {
      const snapshot = await fleet.readFleet(redis, {
        group,
        keyPrefix: values['key-prefix'],
        timeoutMs: 2000,
      });
      if (values.json) process.stdout.write(`${JSON.stringify(snapshot)}\n`);
      else {
        if (live) process.stdout.write('\x1b[H\x1b[2J');
        process.stdout.write(fleet.formatFleetTable(snapshot));
        if (!values.once) process.stdout.write('\n');
      }
      return true;
    } catch (err) {
      process.stderr.write(
        `freezeguard: cannot read fleet group ${group} at ${redactUrl(values.redis!)}: ${(err as Error).message}${lastError ? ` (${lastError})` : ''}\n`,
      );
      return false;
    }
  };
  try {
    // Commands fail fast (no offline queue): wait for the connection first, bounded.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 3000);
      redis.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const ok = await show();
    if (values.once) return ok ? 0 : 2;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => void show(), intervalMs);
      const stop = () => {
        clearInterval(timer);
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  } finally {
    redis.disconnect();
  }
}

/**
 * A Redis URL fit for a terminal or a log: the password (or a lone user part, which some
 * clients take as the password) replaced by `***`. Text that is not a URL is shown as
 * `<redis url>`, since it may be one that failed to parse with a secret inside.
 *
 * @example
 * ```ts
 * redactUrl('redis://app:s3cret@cache:6379/0'); // 'redis://app:***@cache:6379/0'
 * ```
 */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return '<redis url>';
  }
  if (url.password) url.password = '***';
  // redis://secret@host: some clients read a lone user part as the password.
  else if (url.username) url.username = '***';
  return url.toString();
}
