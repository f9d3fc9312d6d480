import { assertOption } from '@freezeguard/core/adapter';
import { redisFleet } from './coordinator.js';
import type { RedisFleetOptions } from './options.js';
import type { RedisLike } from './store.js';

/**
 * Turns the fleet on from the environment, so an app joins a fleet without code changes:
 * `REDIS_URL` and `FREEZEGUARD_FLEET_GROUP` (both required, else `undefined`: no fleet),
 * `FREEZEGUARD_MIN_IN_ROTATION` (default 1) and `FREEZEGUARD_FLEET_KEY_PREFIX`. ioredis is
 * loaded only when the fleet is on.
 *
 * @example
 * ```ts
 * const fleet = await redisFleetFromEnv();
 * const guard = createGuard(fleet ? { fleet, approve: 'fleet' } : { approve: 'solo' });
 * ```
 */
export async function redisFleetFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: Partial<Omit<RedisFleetOptions, 'redis' | 'group'>> = {},
): Promise<ReturnType<typeof redisFleet> | undefined> {
  const url = env.REDIS_URL;
  const group = env.FREEZEGUARD_FLEET_GROUP;
  if (!url || !group) return undefined;
  const min = env.FREEZEGUARD_MIN_IN_ROTATION;
  const minInRotation = min === undefined || min === '' ? undefined : Number(min);
  assertOption(
    minInRotation === undefined || Number.isInteger(minInRotation),
    'FREEZEGUARD_MIN_IN_ROTATION',
    'must be an integer',
    min,
  );
  const { Redis } = (await import('ioredis')) as unknown as {
    Redis: new (
      url: string,
      options: { lazyConnect: boolean },
    ) => RedisLike & { on(event: 'error', fn: () => void): unknown };
  };
  // Only a template: the fleet opens its own connections with duplicate(); this one never
  // connects.
  const redis = new Redis(url, { lazyConnect: true });
  redis.on('error', () => {});
  return redisFleet({
    ...options,
    redis,
    group,
    ...(minInRotation === undefined ? {} : { minInRotation }),
    ...(env.FREEZEGUARD_FLEET_KEY_PREFIX ? { keyPrefix: env.FREEZEGUARD_FLEET_KEY_PREFIX } : {}),
  });
}
