import type { CloudEmulator, CloudPlaybook, SimCloud } from '../types.js';
import type { AwsSimulator } from './aws/emulator.js';
import { aws } from './aws/playbook.js';
import { azure } from './azure/playbook.js';
import type { Simulator } from './azure/types.js';
import type { GcpSimulator } from './gcp/emulator.js';
import { gcp } from './gcp/playbook.js';

/*
 * The three clouds, each behind the same CloudPlaybook: the entry looks a cloud up here
 * and never asks which one it has.
 */

/** Any of the three emulators; tell them apart by `cloud`. */
export type AnySimulator = Simulator | GcpSimulator | AwsSimulator;

/** A playbook of some cloud, as the entry drives it. */
export type AnyPlaybook = CloudPlaybook<CloudEmulator, object, string, unknown>;

/**
 * Every cloud's playbook, by name.
 *
 * @example
 * ```ts
 * Object.keys(PLAYBOOKS.gcp.scenarios); // ['gce-live-migration', …]
 * ```
 */
export const PLAYBOOKS: Readonly<Record<SimCloud, AnyPlaybook>> = { azure, gcp, aws };

/** The clouds, in the order usage texts list them. */
export const CLOUDS: readonly SimCloud[] = ['azure', 'gcp', 'aws'];

/**
 * The playbook of `cloud`; a TypeError naming the option when it is no cloud we emulate.
 *
 * @example
 * ```ts
 * const announced = playbookOf(sim.cloud).announceFreeze(sim, { freezeMs: 5000, noticeMs: 10_000 }, mark);
 * ```
 */
export function playbookOf(cloud: unknown): AnyPlaybook {
  if (typeof cloud !== 'string' || !Object.hasOwn(PLAYBOOKS, cloud))
    throw new TypeError(
      `Invalid option \`cloud\`: must be azure, gcp or aws (got ${JSON.stringify(cloud)})`,
    );
  return PLAYBOOKS[cloud as SimCloud];
}
