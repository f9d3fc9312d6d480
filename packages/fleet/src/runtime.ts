import type { Logger, Timers } from '@freezeguard/core';
import type { Resolved } from './options.js';
import type { FleetStore } from './store.js';

/** The store and contexts a coordinator and its wrapped source share. */
export interface FleetRuntime {
  readonly o: Resolved;
  /** The store, opened by whichever of coordinator and source starts first. */
  open(logger: Logger, timers: Timers): FleetStore;
  /** Closes the store once neither the coordinator nor the source uses it. */
  release(): Promise<void>;
  /** This VM's name when the guard knows it. */
  guardResourceName(): string | undefined;
  /** True when this member currently polls the metadata service for its VM. */
  isPoller(): boolean;
}
