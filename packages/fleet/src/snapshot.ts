import { systemTimers } from '@freezeguard/core';
import { withTimeout } from '@freezeguard/core/adapter';
import { groupKeys } from './options.js';
import { SNAPSHOT } from './scripts.js';
import type { RedisConnection } from './store.js';

/** One member as the fleet table shows it. */
export interface FleetMemberRow {
  readonly id: string;
  readonly resourceName: string | null;
  readonly state: string;
  readonly ready: boolean;
  readonly holdsSlot: boolean;
  readonly poller: boolean;
  /** Events the member holds its slot for. */
  readonly events: readonly string[];
  /** False for a slot still held by a member whose heartbeat expired. */
  readonly alive: boolean;
  /** Ms until the heartbeat expires (null when not a live member). */
  readonly expiresInMs: number | null;
  /** Ms until the slot lease expires unless renewed (null without a slot). */
  readonly slotExpiresInMs: number | null;
}

/** Decodes the `{id, memberExpiry, view, slotExpiry}…` rows the scripts return. */
export function parseGroup(flat: readonly unknown[], now: number): FleetMemberRow[] {
  const rows: FleetMemberRow[] = [];
  for (let i = 0; i + 3 < flat.length; i += 4) {
    const id = String(flat[i]);
    const memberExpiry = flat[i + 1] === '' ? null : Number(flat[i + 1]);
    const slotExpiry = flat[i + 3] === '' || flat[i + 3] == null ? null : Number(flat[i + 3]);
    let v: Record<string, unknown> = {};
    try {
      const parsed = JSON.parse(String(flat[i + 2] || '{}'));
      if (parsed && typeof parsed === 'object') v = parsed as Record<string, unknown>;
    } catch {
      // a foreign or corrupt value shows as an unknown member rather than breaking status
    }
    rows.push({
      id,
      resourceName: typeof v.resourceName === 'string' ? v.resourceName : null,
      state: typeof v.state === 'string' ? v.state : 'unknown',
      ready: v.ready === true,
      holdsSlot: slotExpiry !== null,
      poller: v.poller === true,
      events: Array.isArray(v.events) ? v.events.map(String) : [],
      alive: memberExpiry !== null && memberExpiry > now,
      expiresInMs: memberExpiry === null ? null : memberExpiry - now,
      slotExpiresInMs: slotExpiry === null ? null : slotExpiry - now,
    });
  }
  return rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A read of one group, for `freezeguard fleet`. */
export interface FleetSnapshot {
  readonly group: string;
  /** Redis server time of the read. */
  readonly at: number;
  readonly members: readonly FleetMemberRow[];
}

/**
 * Reads a group's members, states, slot holders and pollers without changing anything.
 * `redis` is any ioredis connection (it must not be in subscriber mode).
 *
 * @example
 * ```ts
 * const snapshot = await readFleet(new Redis(url), { group: 'checkout-api' });
 * console.log(formatFleetTable(snapshot));
 * ```
 */
export async function readFleet(
  redis: Pick<RedisConnection, 'evalsha' | 'eval'>,
  options: { readonly group: string; readonly keyPrefix?: string; readonly timeoutMs?: number },
): Promise<FleetSnapshot> {
  const keys = groupKeys(options.keyPrefix ?? 'freezeguard:', options.group);
  const args = [keys.members, keys.info, keys.slots];
  const run = async () => {
    try {
      return await redis.evalsha(SNAPSHOT.sha, 3, ...args);
    } catch (err) {
      if (!String((err as Error)?.message).includes('NOSCRIPT')) throw err;
      return await redis.eval(SNAPSHOT.body, 3, ...args);
    }
  };
  const [now, flat] = (await withTimeout(
    systemTimers,
    run(),
    options.timeoutMs ?? 2000,
    'Redis snapshot',
  )) as [number, unknown[]];
  return { group: options.group, at: Number(now), members: parseGroup(flat, Number(now)) };
}

/**
 * Renders a snapshot as a fixed-width table: one line per member with its VM, state,
 * whether it serves, holds a drain slot (and for which events) and polls the metadata
 * service, then a summary line.
 *
 * @example
 * ```ts
 * process.stdout.write(formatFleetTable(await readFleet(redis, { group: 'api' })));
 * ```
 */
export function formatFleetTable(snapshot: FleetSnapshot, minInRotation?: number): string {
  const header = ['MEMBER', 'VM', 'STATE', 'SERVING', 'SLOT', 'POLLER', 'HEARTBEAT'];
  const rows = snapshot.members.map((m) => [
    m.id,
    m.resourceName ?? '?',
    m.alive ? m.state : 'gone',
    m.alive && m.ready && !m.holdsSlot ? 'yes' : 'no',
    m.holdsSlot
      ? `held ${Math.round((m.slotExpiresInMs ?? 0) / 1000)}s${m.events.length ? ` ${m.events.join(',')}` : ''}`
      : '-',
    m.poller ? 'yes' : '-',
    m.expiresInMs === null ? '-' : `ttl ${(m.expiresInMs / 1000).toFixed(1)}s`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const serving = snapshot.members.filter((m) => m.alive && m.ready && !m.holdsSlot).length;
  const slots = snapshot.members.filter((m) => m.holdsSlot).length;
  const summary = `group ${snapshot.group}: ${snapshot.members.filter((m) => m.alive).length} member(s), ${serving} serving${minInRotation === undefined ? '' : ` (min ${minInRotation})`}, ${slots} slot(s) held — ${new Date(snapshot.at).toISOString()}`;
  return `${[summary, line(header), ...rows.map(line)].join('\n')}\n`;
}
