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

export type {
  AwsFaultInput,
  AwsSimulator,
  AwsSimulatorOptions,
  Ec2EventCode,
  Ec2ScheduledEvent,
} from './clouds/aws/emulator.js';
export type { AwsScenarioName } from './clouds/aws/playbook.js';
export type { ScenarioName } from './clouds/azure/playbook.js';
export type {
  ScheduleInput,
  SimEvent,
  SimEventType,
  Simulator,
  SimulatorOptions,
} from './clouds/azure/types.js';
export type {
  GceMaintenanceValue,
  GceUpcomingMaintenance,
  GcpFaultInput,
  GcpSimulator,
  GcpSimulatorOptions,
} from './clouds/gcp/emulator.js';
export type { GcpScenarioName } from './clouds/gcp/playbook.js';
export type { AnySimulator } from './clouds/index.js';
export { drillDetail } from './drill/judge.js';
export type { LoadBucket } from './drill/load.js';
export { renderDrillReport } from './drill/render.js';
export { runDrill } from './drill/run.js';
export type {
  DrillDetail,
  DrillOptions,
  DrillReport,
  Probe,
  TimelineEntry,
} from './drill/types.js';
export {
  type CloudRehearsalOptions,
  type RehearseFreezeOptions,
  rehearseFreeze,
  rehearseShutdown,
} from './rehearsal.js';
export {
  CLOUD_SCENARIO_NAMES,
  runScenario,
  SCENARIO_NAMES,
} from './scenarios.js';
export { startSimulator } from './simulator.js';
export type {
  CloudEmulator,
  FaultInput,
  FreezePlan,
  Rehearsal,
  ScenarioOptions,
  SimCloud,
  SimRequest,
} from './types.js';
