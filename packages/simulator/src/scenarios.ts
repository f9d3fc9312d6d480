import type { AwsSimulator } from './clouds/aws/emulator.js';
import type { AwsScenarioName } from './clouds/aws/playbook.js';
import type { ScenarioName } from './clouds/azure/playbook.js';
import type { SimEvent, Simulator } from './clouds/azure/types.js';
import type { GcpSimulator } from './clouds/gcp/emulator.js';
import type { GcpScenarioName } from './clouds/gcp/playbook.js';
import { type AnySimulator, CLOUDS, PLAYBOOKS, playbookOf } from './clouds/index.js';
import type { ScenarioOptions, SimCloud } from './types.js';

/*
 * Scenarios of every cloud, through one door: names, summaries, and `runScenario` that
 * plays one on an emulator of its cloud.
 */

/** Scenario names per cloud. */
export const CLOUD_SCENARIO_NAMES: {
  readonly azure: readonly ScenarioName[];
  readonly gcp: readonly GcpScenarioName[];
  readonly aws: readonly AwsScenarioName[];
} = {
  azure: Object.keys(PLAYBOOKS.azure.scenarios) as ScenarioName[],
  gcp: Object.keys(PLAYBOOKS.gcp.scenarios) as GcpScenarioName[],
  aws: Object.keys(PLAYBOOKS.aws.scenarios) as AwsScenarioName[],
};

/** Names of Azure's scenarios (`CLOUD_SCENARIO_NAMES` has every cloud's). */
export const SCENARIO_NAMES: readonly ScenarioName[] = CLOUD_SCENARIO_NAMES.azure;

function scenarioOf(cloud: SimCloud, name: string) {
  const scenarios = playbookOf(cloud).scenarios;
  if (!Object.hasOwn(scenarios, name))
    throw new TypeError(
      `unknown ${cloud} scenario ${JSON.stringify(name)}; known: ${CLOUD_SCENARIO_NAMES[cloud].join(', ')}`,
    );
  return scenarios[name]!;
}

/**
 * One line describing a scenario, of `cloud` or else of the cloud that has one so named.
 *
 * @example
 * ```ts
 * scenarioSummary('preempt'); // 'Spot eviction with the 30 s minimum notice'
 * scenarioSummary('ec2-spot-interruption', 'aws'); // 'spot/instance-action terminate, 2 minutes ahead'
 * ```
 */
export function scenarioSummary(name: string, cloud?: SimCloud): string {
  const owner =
    cloud ?? CLOUDS.find((c) => (CLOUD_SCENARIO_NAMES[c] as readonly string[]).includes(name));
  return scenarioOf(owner ?? 'azure', name).summary;
}

/**
 * One line describing a scenario of `cloud` ({@link scenarioSummary} with the cloud first).
 *
 * @example
 * ```ts
 * cloudScenarioSummary('aws', 'ec2-spot-interruption'); // 'spot/instance-action terminate, 2 minutes ahead'
 * ```
 */
export function cloudScenarioSummary(cloud: SimCloud, name: string): string {
  return scenarioSummary(name, cloud);
}

/**
 * Plays a scenario on a running emulator of its cloud, with the cloud's real notices
 * divided by `timeScale` (60 turns 15 minutes into 15 seconds). Azure's events start at
 * NotBefore on their own and its freezes leave the document after their duration; it
 * returns the events it scheduled.
 *
 * @example
 * ```ts
 * const sim = await startSimulator();
 * runScenario(sim, 'live-migration', { timeScale: 60 }); // Freeze in 15 s
 * const ec2 = await startSimulator({ cloud: 'aws' });
 * runScenario(ec2, 'ec2-spot-interruption', { timeScale: 4 }); // 30 s notice
 * ```
 */
export function runScenario(
  sim: Simulator,
  name: ScenarioName,
  options?: ScenarioOptions,
): SimEvent[];
export function runScenario(
  sim: GcpSimulator | AwsSimulator,
  name: string,
  options?: ScenarioOptions,
): void;
export function runScenario(
  sim: AnySimulator,
  name: string,
  options?: ScenarioOptions,
): SimEvent[] | undefined;
export function runScenario(
  sim: AnySimulator,
  name: string,
  options: ScenarioOptions = {},
): SimEvent[] | undefined {
  const scenario = scenarioOf(sim.cloud, name);
  const scale = options.timeScale ?? 1;
  if (!(scale > 0))
    throw new TypeError(`Invalid option \`timeScale\`: must be > 0 (got ${options.timeScale})`);
  return scenario.run(sim, scale) as SimEvent[] | undefined;
}
