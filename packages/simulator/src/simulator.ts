import type { AwsSimulator, AwsSimulatorOptions } from './clouds/aws/emulator.js';
import type { Simulator, SimulatorOptions } from './clouds/azure/types.js';
import type { GcpSimulator, GcpSimulatorOptions } from './clouds/gcp/emulator.js';
import { type AnySimulator, playbookOf } from './clouds/index.js';
import type { SimCloud } from './types.js';

/**
 * Starts an Azure IMDS Scheduled Events emulator (or, with `cloud`, the GCE metadata
 * server or EC2 IMDS emulator) on 127.0.0.1. It answers like IMDS
 * (header and api-version checks, 429 above 5 requests/s, ETags, RFC 1123 NotBefore,
 * `StartRequests`), plus a control API under `/__freezeguard/` for scripts in any language.
 *
 * @example
 * ```ts
 * import { startSimulator } from '@freezeguard/simulator';
 * const sim = await startSimulator({ resourceName: 'vm-1' });
 * process.env.FREEZEGUARD_IMDS_ENDPOINT = sim.url;
 * const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 30_000, durationInSeconds: 5 });
 * sim.start(ev.EventId); sim.complete(ev.EventId);
 * await sim.close();
 *
 * const gce = await startSimulator({ cloud: 'gcp' }); // GCE metadata server
 * const ec2 = await startSimulator({ cloud: 'aws' }); // EC2 IMDS
 * ```
 */
export async function startSimulator(
  options?: SimulatorOptions & { readonly cloud?: 'azure' },
): Promise<Simulator>;
export async function startSimulator(
  options: GcpSimulatorOptions & { readonly cloud: 'gcp' },
): Promise<GcpSimulator>;
export async function startSimulator(
  options: AwsSimulatorOptions & { readonly cloud: 'aws' },
): Promise<AwsSimulator>;
export async function startSimulator(
  options: (SimulatorOptions | GcpSimulatorOptions | AwsSimulatorOptions) & {
    readonly cloud?: SimCloud;
  },
): Promise<AnySimulator>;
export async function startSimulator(
  options: (SimulatorOptions | GcpSimulatorOptions | AwsSimulatorOptions) & {
    readonly cloud?: SimCloud;
  } = {},
): Promise<AnySimulator> {
  const cloud = options.cloud === undefined ? 'azure' : options.cloud;
  return (await playbookOf(cloud).start(options)) as AnySimulator;
}
