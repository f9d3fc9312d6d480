import {
  awsInstanceEvents,
  azureScheduledEvents,
  CLOUD_NAMES,
  type CloudName,
  defaultGcpEndpoint,
  defaultImdsEndpoint,
  gcpMaintenanceEvents,
  type MaintenanceSource,
} from '@freezeguard/core';
import type { AnySimulator } from './clouds/index.js';
import { CLOUD_SCENARIO_NAMES, runScenario, scenarioSummary } from './scenarios.js';
import { startSimulator } from './simulator.js';
import type { SimCloud } from './types.js';

/** The `--cloud` value, or null when it names no cloud. */
export function parseCloud(text: string): CloudName | null {
  const cloud = text.trim().toLowerCase();
  return CLOUD_NAMES.includes(cloud as CloudName) ? (cloud as CloudName) : null;
}

/** The source `freezeguard watch --cloud …` reads, with short timeouts for a terminal. */
export function watchSourceFor(
  cloud: CloudName,
  options: { readonly endpoint?: string; readonly pollIntervalMs: number },
): MaintenanceSource & { readonly endpoint: string } {
  if (cloud === 'gcp') {
    return gcpMaintenanceEvents({
      endpoint: options.endpoint ?? defaultGcpEndpoint(),
      pollIntervalMs: options.pollIntervalMs,
      requestTimeoutMs: 5_000,
      maxBackoffMs: Math.max(5_000, options.pollIntervalMs),
    });
  }
  if (cloud === 'aws') {
    return awsInstanceEvents({
      endpoint: options.endpoint ?? defaultImdsEndpoint(),
      pollIntervalMs: options.pollIntervalMs,
      requestTimeoutMs: 5_000,
      maxBackoffMs: Math.max(5_000, options.pollIntervalMs),
      rebalance: true,
    });
  }
  return azureScheduledEvents({
    endpoint: options.endpoint ?? defaultImdsEndpoint(),
    pollIntervalMs: options.pollIntervalMs,
    requestTimeoutMs: 5_000,
    firstRequestTimeoutMs: 5_000,
    maxBackoffMs: Math.max(5_000, options.pollIntervalMs),
  });
}

/** Scenario names of a cloud, for usage messages. */
export function cloudScenarios(cloud: SimCloud): readonly string[] {
  return CLOUD_SCENARIO_NAMES[cloud];
}

/** Prints what `sim` serves and, from now on, every change to it. */
function describeEmulator(sim: AnySimulator, log: (line: string) => void): void {
  switch (sim.cloud) {
    case 'azure':
      log(`IMDS Scheduled Events emulator at ${sim.url}`);
      log(
        `  GET  ${sim.url}/metadata/scheduledevents?api-version=2020-07-01   (header Metadata: true)`,
      );
      log(
        `  GET  ${sim.url}/metadata/instance/compute/name?api-version=2021-02-01&format=text → ${sim.resourceName}`,
      );
      log(
        `  control: GET ${sim.url}/__freezeguard/state, POST ${sim.url}/__freezeguard/events {"type":"Freeze","notBeforeInMs":30000}`,
      );
      log(
        `Point an app at it: FREEZEGUARD_IMDS_ENDPOINT=${sim.url} FREEZEGUARD_RESOURCE_NAME=${sim.resourceName}`,
      );
      sim.on('change', () =>
        log(`document incarnation ${sim.incarnation}: ${JSON.stringify(sim.document().Events)}`),
      );
      sim.on('approved', (a) => log(`StartRequests for ${a.eventId}`));
      return;
    case 'gcp':
      log(`GCE metadata server emulator at ${sim.url}`);
      log(
        `  GET ${sim.url}/computeMetadata/v1/instance/maintenance-event   (header Metadata-Flavor: Google; ?wait_for_change=true&last_etag=…)`,
      );
      log(`  GET ${sim.url}/computeMetadata/v1/instance/preempted, …/upcoming-maintenance`);
      log(`  GET ${sim.url}/computeMetadata/v1/instance/name → ${sim.resourceName}`);
      sim.on('change', (c) => log(`${c.key} → ${c.value}`));
      break;
    case 'aws':
      log(`EC2 instance metadata (IMDS) emulator at ${sim.url}`);
      log(
        `  PUT ${sim.url}/latest/api/token   (header X-aws-ec2-metadata-token-ttl-seconds: 21600)`,
      );
      log(
        `  GET ${sim.url}/latest/meta-data/spot/instance-action, …/events/maintenance/scheduled   (header X-aws-ec2-metadata-token)`,
      );
      log(`  GET ${sim.url}/latest/meta-data/instance-id → ${sim.resourceName}`);
      sim.on('change', (c) => log(`${c.what} changed`));
      break;
  }
  log(`Point an app at it: FREEZEGUARD_CLOUD=${sim.cloud} FREEZEGUARD_IMDS_ENDPOINT=${sim.url}`);
}

/**
 * `freezeguard simulate [--cloud …]`: runs the emulator, prints what it serves and every
 * change, plays a scenario, and stops on SIGINT/SIGTERM.
 */
export async function simulateCloud(options: {
  readonly cloud: SimCloud;
  readonly port: number;
  readonly host: string;
  readonly resource?: string;
  readonly scenario?: string;
  readonly timeScale: number;
}): Promise<number> {
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()}  ${line}\n`);
  const sim = await startSimulator({
    cloud: options.cloud,
    port: options.port,
    host: options.host,
    ...(options.resource ? { resourceName: options.resource } : {}),
  });
  describeEmulator(sim, log);
  if (options.scenario) {
    log(
      `scenario ${options.scenario}: ${scenarioSummary(options.scenario, options.cloud)} (time scale ${options.timeScale})`,
    );
    runScenario(sim, options.scenario, { timeScale: options.timeScale });
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await sim.close();
  return 0;
}
