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
} from './aws.js';
export {
  type AwsScenarioName,
  CLOUD_SCENARIO_NAMES,
  type CloudRehearsalOptions,
  cloudScenarioSummary,
  type GcpScenarioName,
  rehearseCloudFreeze,
  rehearseShutdown,
  runCloudScenario,
} from './clouds.js';
export {
  type DrillOptions,
  type DrillReport,
  formatDrillReport,
  type Rehearsal,
  type RehearseFreezeOptions,
  rehearseFreeze,
  runDrill,
  type TimelineEntry,
} from './drill.js';
export {
  type GceMaintenanceValue,
  type GceUpcomingMaintenance,
  type GcpFaultInput,
  type GcpSimulator,
  type GcpSimulatorOptions,
  startGcpSimulator,
} from './gcp.js';
export { LOAD_BUCKET_MS, type LoadBucket, type LoadOptions, startLoad } from './load.js';
export {
  type DrillDetail,
  drillDetail,
  measuredPause,
  REPORT_PHASES,
  renderDrillReport,
  watchPhases,
} from './report.js';
export { runScenario, SCENARIO_NAMES, type ScenarioName, scenarioSummary } from './scenarios.js';
export {
  type AnySimulator,
  API_VERSIONS,
  type FaultInput,
  MINIMUM_NOTICE_MS,
  type ScheduleInput,
  type SimCloud,
  type SimEvent,
  type SimEventType,
  type SimRequest,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from './simulator.js';
