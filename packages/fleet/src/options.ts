import { hostname } from 'node:os';
import { assertOption, withDefaults } from '@freezeguard/core/adapter';
import type { RedisLike } from './store.js';

/** Options of {@link redisFleet}. */
export interface RedisFleetOptions {
  /**
   * An ioredis (≥ 5) client. The fleet opens two connections of its own with
   * `redis.duplicate()` (same host, auth, TLS, db) and closes them on `stop()`; yours is
   * left untouched.
   */
  readonly redis: RedisLike;
  /** Members that serve the same traffic (behind the same load balancer). */
  readonly group: string;
  /** Never fewer members serving than this: a drain slot is granted only if it holds. Default 1. */
  readonly minInRotation?: number;
  /** Prefix of every Redis key and channel. Default `freezeguard:`. */
  readonly keyPrefix?: string;
  /** This member's id in the group. Default `hostname:pid:random`. */
  readonly memberId?: string;
  /** Heartbeat period; each beat also renews a held slot. Default 1000 ms. */
  readonly heartbeatMs?: number;
  /**
   * A member that has not beaten for this long leaves the group (crashed, or frozen
   * longer than this). Default 5000 ms.
   */
  readonly memberTtlMs?: number;
  /**
   * Lifetime of a drain slot that is not renewed: it must outlive a freeze, or a frozen
   * member's slot would be given to another while it is still out of rotation. Default 150 s.
   */
  readonly slotTtlMs?: number;
  /** Lease of the per-VM metadata poller; a frozen or dead poller is replaced after it. Default 3000 ms. */
  readonly pollerLeaseMs?: number;
  /** How often the poller renews its lease and the others look for a newer document. Default 1000 ms. */
  readonly pollerRenewMs?: number;
  /** Longest wait for Redis in any call; slower counts as unavailable. Default 1000 ms. */
  readonly opTimeoutMs?: number;
}

export const DEFAULTS = {
  minInRotation: 1,
  keyPrefix: 'freezeguard:',
  memberId: '',
  heartbeatMs: 1000,
  memberTtlMs: 5000,
  slotTtlMs: 150_000,
  pollerLeaseMs: 3000,
  pollerRenewMs: 1000,
  opTimeoutMs: 1000,
};

export type Resolved = typeof DEFAULTS & { readonly redis: RedisLike; readonly group: string };

/** Merges defaults once and checks every invariant, naming the option that breaks it. */
export function resolveOptions(options: RedisFleetOptions): Resolved {
  assertOption(
    options !== null && typeof options === 'object',
    'options',
    'must be an object',
    options,
  );
  assertOption(
    options.redis !== null &&
      typeof options.redis === 'object' &&
      typeof (options.redis as { duplicate?: unknown }).duplicate === 'function',
    'redis',
    'must be an ioredis client (new Redis(url))',
    options.redis,
  );
  assertOption(
    typeof options.group === 'string' && /^[^\s{}]+$/.test(options.group),
    'group',
    'must be a non-empty string without spaces or braces',
    options.group,
  );
  const o = withDefaults(DEFAULTS, options);
  const memberId =
    o.memberId || `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  assertOption(
    Number.isInteger(o.minInRotation) && o.minInRotation >= 0,
    'minInRotation',
    'must be an integer ≥ 0',
    o.minInRotation,
  );
  assertOption(typeof o.keyPrefix === 'string', 'keyPrefix', 'must be a string', o.keyPrefix);
  assertOption(!/\s/.test(memberId), 'memberId', 'must not contain spaces', memberId);
  for (const key of ['heartbeatMs', 'pollerRenewMs', 'opTimeoutMs'] as const) {
    assertOption(Number.isFinite(o[key]) && o[key] >= 10, key, 'must be a number ≥ 10', o[key]);
  }
  assertOption(
    o.memberTtlMs >= 2 * o.heartbeatMs,
    'memberTtlMs',
    'must be ≥ 2 × heartbeatMs (one late beat must not drop a member)',
    o.memberTtlMs,
  );
  assertOption(
    o.slotTtlMs >= 5 * o.heartbeatMs,
    'slotTtlMs',
    'must be ≥ 5 × heartbeatMs',
    o.slotTtlMs,
  );
  assertOption(
    o.pollerLeaseMs >= 2 * o.pollerRenewMs,
    'pollerLeaseMs',
    'must be ≥ 2 × pollerRenewMs',
    o.pollerLeaseMs,
  );
  return { ...o, memberId, redis: options.redis, group: options.group };
}

/** Redis key names. Group keys share the `{group}` hash tag, VM keys the `{vm}` tag. */
export function groupKeys(keyPrefix: string, group: string) {
  const base = `${keyPrefix}group:{${group}}:`;
  return {
    members: `${base}members`,
    info: `${base}info`,
    slots: `${base}slots`,
    channel: `${base}changes`,
  };
}

/**
 * Keys of the approval registry: every member of every group under `keyPrefix`, with its
 * VM, and the prepared/approved marks of each event. A freeze stops the whole VM, so an
 * event is approved once every member on its VMs prepared, whatever its group; one hash
 * tag keeps each approval script in one slot (Redis Cluster safe).
 */
export function approvalKeys(keyPrefix: string) {
  const base = `${keyPrefix}approvals:{vms}:`;
  return {
    members: `${base}members`,
    info: `${base}info`,
    channel: `${base}changes`,
    prepared: (eventId: string) => `${base}prepared:${eventId}`,
    approved: (eventId: string) => `${base}approved:${eventId}`,
  };
}

/**
 * Keys of the per-VM poller; shared by every group on the VM (one poller per VM). `vm` is
 * `id:<the VM's unique id>`, or its name where the source cannot tell the id.
 */
export function vmKeys(keyPrefix: string, vm: string) {
  const base = `${keyPrefix}vm:{${vm}}:`;
  return {
    poller: `${base}poller`,
    epoch: `${base}epoch`,
    latest: `${base}latest`,
    channel: `${base}documents`,
  };
}
