import {
  type FleetContext,
  type FleetCoordinator,
  type FleetMemberView,
  systemClock,
  systemTimers,
  type TimerHandle,
  type Timers,
} from '@freezeguard/core';
import { recordingLogger } from '@freezeguard/core/testing';
import { redisFleet } from '../src/index.js';
import type { RedisLike } from '../src/store.js';

/** Short periods so membership, leases and elections play out in a second or two. */
export const FAST = {
  heartbeatMs: 100,
  memberTtlMs: 500,
  slotTtlMs: 2000,
  pollerRenewMs: 100,
  pollerLeaseMs: 400,
  opTimeoutMs: 300,
} as const;

/**
 * Real timers that can be held, like a process under SIGSTOP: while paused nothing fires;
 * on resume every held callback fires at once, late.
 */
export function pausableTimers(): Timers & { pause(): void; resume(): void } {
  let paused = false;
  const held = new Set<() => void>();
  return {
    setTimeout(fn, ms) {
      const run = () => {
        if (paused) held.add(fn);
        else fn();
      };
      return systemTimers.setTimeout(run, ms);
    },
    clearTimeout(handle: TimerHandle) {
      systemTimers.clearTimeout(handle);
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      const fns = [...held];
      held.clear();
      for (const fn of fns) fn();
    },
  };
}

export interface TestMember {
  readonly fleet: FleetCoordinator & { readonly memberId: string };
  readonly view: { state: string; ready: boolean; resourceName: string | undefined };
  readonly logger: ReturnType<typeof recordingLogger>;
  readonly timers: ReturnType<typeof pausableTimers>;
  changes: number;
  start(): void;
}

/** A coordinator driven by a hand-made guard view, as the guard would drive it. */
export function testMember(
  redis: RedisLike,
  options: {
    readonly group: string;
    readonly id: string;
    readonly resourceName?: string;
    readonly minInRotation?: number;
    readonly keyPrefix?: string;
    readonly overrides?: Record<string, unknown>;
  },
): TestMember {
  const fleet = redisFleet({
    redis,
    group: options.group,
    memberId: options.id,
    minInRotation: options.minInRotation ?? 1,
    ...(options.keyPrefix ? { keyPrefix: options.keyPrefix } : {}),
    ...FAST,
    ...(options.overrides ?? {}),
  });
  const view = { state: 'idle', ready: true, resourceName: options.resourceName };
  const logger = recordingLogger();
  const timers = pausableTimers();
  const m: TestMember = {
    fleet,
    view,
    logger,
    timers,
    changes: 0,
    start() {
      const ctx: FleetContext = {
        logger,
        clock: systemClock,
        timers,
        member: (): FleetMemberView => ({ ...view }),
        onChange: () => {
          m.changes++;
        },
      };
      fleet.start(ctx);
    },
  };
  return m;
}
