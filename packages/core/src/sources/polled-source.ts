import { FreezeguardError } from '../errors.js';
import type { MaintenanceEvent } from '../event.js';
import type { MetadataClient } from './metadata-http.js';
import type { PollLoop } from './poll-loop.js';
import type { MaintenanceSource, SourceContext } from './source.js';

/*
 * The parts of a MaintenanceSource that every metadata-server source assembles the same
 * way around its client and poll loop. The sources that translate another cloud's notices
 * (GCE, EC2) also share the MaintenanceEvent they build and the "no approval" answer.
 */

/**
 * `start`, `stop` and `health` of a source made of a metadata client and a poll loop.
 * `onStart` takes what the source needs from the context before the first read.
 *
 * @example
 * ```ts
 * return { kind: 'my-cloud', ...pollLifecycle(client, loop, (c) => (clock = c.clock)), … };
 * ```
 */
export function pollLifecycle(
  client: MetadataClient,
  loop: PollLoop,
  onStart?: (context: SourceContext) => void,
): Pick<MaintenanceSource, 'start' | 'stop' | 'health'> {
  return {
    start(context) {
      if (loop.running) return;
      onStart?.(context);
      client.bind(context);
      loop.start(context);
    },
    async stop() {
      loop.stop();
      await client.close();
    },
    health() {
      return loop.health();
    },
  };
}

/**
 * The approval half of a source whose platform cannot start an event early: the guard
 * sees `supportsApproval: false`, and `approve()` rejects with `ERR_APPROVAL_UNSUPPORTED`.
 *
 * @example
 * ```ts
 * return { ...noApproval('GCE has no call to start maintenance early'), … };
 * ```
 */
export function noApproval(
  message: string,
): Pick<MaintenanceSource, 'approve'> & { readonly supportsApproval: false } {
  return {
    supportsApproval: false,
    async approve() {
      throw new FreezeguardError('ERR_APPROVAL_UNSUPPORTED', message);
    },
  };
}

/**
 * This VM's name, configured or read once from the platform; an empty answer leaves it
 * unknown so the next call asks again.
 *
 * @example
 * ```ts
 * const name = resourceName(null, () => text('name'));
 * await name.resolve(); // 'vm-1'
 * ```
 */
export function resourceName(
  configured: string | null,
  fetch: () => Promise<string>,
): { readonly current: string | null; resolve(): Promise<string | null> } {
  let name = configured;
  return {
    get current() {
      return name;
    },
    async resolve() {
      if (name === null) {
        const fetched = await fetch();
        if (fetched !== '') name = fetched;
      }
      return name;
    },
  };
}

/** What {@link platformEvent} takes. */
export interface PlatformEventInput {
  readonly id: string;
  readonly type: string;
  readonly status: 'Scheduled' | 'Started';
  /** Epoch ms; kept to the second, as the platforms state it. */
  readonly notBefore: number;
  readonly description: string;
  readonly resources: readonly string[];
}

/**
 * Another cloud's notice as the event the lifecycle knows (duration unknown).
 *
 * @example
 * ```ts
 * platformEvent({ id: 'gce-preempted-1', type: 'Preempt', status: 'Scheduled',
 *   notBefore: Date.now() + 30_000, description: 'GCE preemption', resources: ['vm-1'] });
 * ```
 */
export function platformEvent(e: PlatformEventInput): MaintenanceEvent {
  return {
    id: e.id,
    kind: e.type,
    resourceType: 'VirtualMachine',
    resources: e.resources,
    status: e.status,
    // A time computed from a clock (GCE's notice) would differ at every poll below the
    // second, and make every document a new incarnation.
    notBefore: Math.floor(e.notBefore / 1000) * 1000,
    description: e.description,
    origin: 'Platform',
    durationSeconds: -1,
  };
}
