/**
 * @freezeguard/fleet — coordinate the guards of a fleet through Redis: never drain below
 * `minInRotation`, approve multi-VM events together (`approve: 'fleet'`), and poll the
 * metadata service once per VM.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createGuard } from '@freezeguard/core';
 * import { redisFleet } from '@freezeguard/fleet';
 *
 * const guard = createGuard({
 *   fleet: redisFleet({ redis: new Redis(process.env.REDIS_URL), group: 'checkout-api', minInRotation: 1 }),
 *   approve: 'fleet',
 * });
 * ```
 *
 * @module
 */
export { redisFleet } from './coordinator.js';
export { redisFleetFromEnv } from './env.js';
export type { RedisFleetOptions } from './options.js';
export {
  type FleetMemberRow,
  type FleetSnapshot,
  formatFleetTable,
  readFleet,
} from './snapshot.js';
export type { PollerRole } from './source.js';
export type { RedisConnection, RedisLike } from './store.js';
