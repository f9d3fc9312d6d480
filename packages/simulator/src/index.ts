/**
 * @freezeguard/simulator — emulators of Azure IMDS Scheduled Events, the GCE metadata
 * server and EC2 IMDS, scenarios named after their real events, and the freeze drill
 * behind the `freezeguard` CLI.
 *
 * @example
 * ```ts
 * import { startSimulator } from '@freezeguard/simulator';
 * const sim = await startSimulator({ resourceName: 'vm-1' });
 * ```
 *
 * @module
 */

export {
  type AwsFaultInput,
  type AwsSimulator,
  type AwsSimulatorOptions,
  type Ec2EventCode,
  type Ec2ScheduledEvent,
  ec2Date,
  startAwsSimulator,
} from './clouds/aws/emulator.js';
export type { AwsScenarioName } from './clouds/aws/playbook.js';
export type { ScenarioName } from './clouds/azure/playbook.js';
export {
  API_VERSIONS,
  MINIMUM_NOTICE_MS,
  type ScheduleInput,
  type SimEvent,
  type SimEventType,
  type Simulator,
  type SimulatorOptions,
} from './clouds/azure/types.js';
export {
  type GceMaintenanceValue,
  type GceUpcomingMaintenance,
  type GcpFaultInput,
  type GcpSimulator,
  type GcpSimulatorOptions,
  startGcpSimulator,
} from './clouds/gcp/emulator.js';
export type { GcpScenarioName } from './clouds/gcp/playbook.js';
export type { AnySimulator } from './clouds/index.js';
export { measuredPause, watchPhases } from './drill/collect.js';
export { drillDetail } from './drill/judge.js';
export { LOAD_BUCKET_MS, type LoadBucket, type LoadOptions, startLoad } from './drill/load.js';
export { formatDrillReport, REPORT_PHASES, renderDrillReport } from './drill/render.js';
export { runDrill } from './drill/run.js';
export type { DrillDetail, DrillOptions, DrillReport, TimelineEntry } from './drill/types.js';
export {
  type CloudRehearsalOptions,
  type RehearseFreezeOptions,
  // One rehearsal for every cloud now; the old name stays for callers of 0.1.0.
  rehearseFreeze as rehearseCloudFreeze,
  rehearseFreeze,
  rehearseShutdown,
} from './rehearsal.js';
export {
  CLOUD_SCENARIO_NAMES,
  cloudScenarioSummary,
  // One scenario runner for every cloud now; the old name stays for callers of 0.1.0.
  runScenario as runCloudScenario,
  runScenario,
  SCENARIO_NAMES,
  scenarioSummary,
} from './scenarios.js';
export { startSimulator } from './simulator.js';
export type { FaultInput, Rehearsal, SimCloud, SimRequest } from './types.js';
