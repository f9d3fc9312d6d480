import type { MaintenanceEvent } from './event.js';
import type { Logger } from './logger.js';
import type { MaintenanceSource } from './sources/source.js';
import type { Clock, Timers } from './time/clock.js';

/**
 * What a guard tells its fleet about itself; read at every heartbeat. `state` is the
 * guard's lifecycle state (`GuardState`), kept as a string here so the contract does not
 * depend on the guard module.
 */
export interface FleetMemberView {
  readonly state: string;
  /** True while this member serves traffic (a member without a drain slot still does). */
  readonly ready: boolean;
  /** This VM's name in the platform's `Resources`, once known. */
  readonly resourceName: string | undefined;
  /**
   * True for a guard in observe mode: it prepares nothing and approves nothing, so the
   * others do not wait for it to prepare before they approve.
   */
  readonly observing?: boolean;
}

/** What a guard hands its fleet coordinator on `start()`. */
export interface FleetContext {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly timers: Timers;
  /** The member's current view of itself. */
  member(): FleetMemberView;
  /** The fleet changed (a slot freed, a member joined or left): the guard decides again. */
  onChange(): void;
}

/**
 * The answer to a drain-slot request.
 * - `granted`: this member may drain (it holds a lease until `releaseSlot()` or its TTL);
 * - `denied`: draining now would leave fewer than `minInRotation` members serving;
 * - `unavailable`: the coordinator cannot tell (Redis down or slow): the guard behaves as
 *   if it had no fleet, and says so.
 */
export type SlotAnswer = 'granted' | 'denied' | 'unavailable';

/** `fleet` part of `guard.status()`. */
export interface FleetStatus {
  readonly kind: string;
  readonly group: string;
  /** False while the coordinator cannot reach its store; the guard then acts solo. */
  readonly connected: boolean;
  readonly memberId: string;
  readonly holdsSlot: boolean;
  /** True when this member polls the metadata service for its VM. */
  readonly poller: boolean;
  /** The capacity floor the coordinator enforces, when it has one. */
  readonly minInRotation?: number;
  /** Members serving (ready, no drain slot) at the last look. */
  readonly inRotation?: number;
  /** Why the store was last unreachable, while it is; null when connected. */
  readonly lastError?: string | null;
  readonly members: readonly {
    readonly id: string;
    readonly resourceName: string | null;
    readonly state: string;
    readonly ready: boolean;
    readonly holdsSlot: boolean;
    readonly poller: boolean;
  }[];
}

/**
 * Coordinates the guards of one group (instances that serve the same traffic) so that
 * they never drain together below a capacity floor, approve multi-VM events together,
 * and poll the metadata service once per VM. `@freezeguard/fleet`'s `redisFleet()` is
 * the built-in one; pass it as `createGuard({ fleet })`.
 *
 * Every method must resolve (never reject) and must not block for long: the guard treats
 * a slow answer as `unavailable`.
 *
 * @example
 * ```ts
 * import { redisFleet } from '@freezeguard/fleet';
 * const guard = createGuard({ fleet: redisFleet({ redis, group: 'api', minInRotation: 1 }), approve: 'fleet' });
 * ```
 */
export interface FleetCoordinator {
  readonly kind: string;
  /**
   * What the coordinator spans: `vm` for one that knows only the processes of this VM
   * (and never approves an event listing other VMs), so `approve: 'solo'` goes through
   * it: the VM is approved once, after all its processes prepared. Default `fleet`.
   */
  readonly scope?: 'vm' | 'fleet';
  /**
   * Wraps the guard's source so members sharing a VM (`resourceName`) elect one poller
   * that publishes what it reads; the others read that and never call the metadata
   * service themselves.
   */
  wrapSource(inner: MaintenanceSource): MaintenanceSource;
  /** Join the group (heartbeat with a TTL). */
  start(context: FleetContext): void;
  /** Leave the group: release any slot, stop heartbeats and polling leases. */
  stop(): Promise<void>;
  /** Ask for a drain slot before the traffic phase. */
  acquireSlot(eventIds: readonly string[]): Promise<SlotAnswer>;
  /** Give the slot back (on resume, cancel or stop). Idempotent. */
  releaseSlot(): Promise<void>;
  /**
   * Records that this member prepared (drained) for `event`. Resolves true for exactly
   * one member fleet-wide: the last of the VMs `event` lists to prepare, and only when
   * every one of them is a live member of the group. That member approves the event.
   * The guard reports again after each `onChange()` until it is named (the member it
   * waited for may have left), so a second call for one event must be harmless.
   */
  prepared(event: MaintenanceEvent): Promise<boolean>;
  status(): FleetStatus;
}
