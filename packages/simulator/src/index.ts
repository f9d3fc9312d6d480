/**
 * @freezeguard/simulator — an Azure IMDS Scheduled Events emulator, scenarios and the
 * freeze drill behind the `freezeguard` CLI.
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
  type DrillOptions,
  type DrillReport,
  formatDrillReport,
  type Rehearsal,
  type RehearseFreezeOptions,
  rehearseFreeze,
  runDrill,
  type TimelineEntry,
} from './drill.js';
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
  API_VERSIONS,
  type FaultInput,
  MINIMUM_NOTICE_MS,
  type ScheduleInput,
  type SimEvent,
  type SimEventType,
  type SimRequest,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from './simulator.js';
