import { FreezeguardError } from '../errors.js';
import { awsInstanceEvents } from './aws.js';
import { azureScheduledEvents } from './azure.js';
import { CLOUD_NAMES, type CloudName, type DetectCloudOptions, detectCloudSync } from './detect.js';
import { gcpMaintenanceEvents } from './gcp.js';
import type { MaintenanceSource } from './source.js';

/**
 * The cloud `createGuard()` watches when given no source: `FREEZEGUARD_CLOUD`
 * (`azure`, `gcp`, `aws`), else the one the firmware's DMI strings name, else Azure.
 *
 * @example
 * ```ts
 * chooseCloud(); // 'gcp' on a Compute Engine VM
 * ```
 */
export function chooseCloud(
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: DetectCloudOptions = {},
): CloudName {
  const forced = env.FREEZEGUARD_CLOUD?.trim().toLowerCase();
  if (forced) {
    if (!CLOUD_NAMES.includes(forced as CloudName)) {
      throw new FreezeguardError(
        'ERR_BAD_OPTION',
        `FREEZEGUARD_CLOUD must be one of ${CLOUD_NAMES.join(', ')} (got ${JSON.stringify(env.FREEZEGUARD_CLOUD)})`,
        { details: { option: 'FREEZEGUARD_CLOUD' } },
      );
    }
    return forced as CloudName;
  }
  return detectCloudSync(options) ?? 'azure';
}

/**
 * The maintenance source of one cloud, with its defaults (`FREEZEGUARD_IMDS_ENDPOINT`
 * applies to whichever it is).
 *
 * @example
 * ```ts
 * const source = sourceFor('aws');
 * ```
 */
export function sourceFor(cloud: CloudName): MaintenanceSource {
  switch (cloud) {
    case 'gcp':
      return gcpMaintenanceEvents();
    case 'aws':
      return awsInstanceEvents();
    default:
      return azureScheduledEvents();
  }
}

/**
 * The source `createGuard()` uses when given none. Kept apart from the lifecycle so the
 * guard never imports a concrete cloud: only the package entry decides.
 *
 * @example
 * ```ts
 * const guard = createGuard({ source: defaultSource() }); // what createGuard() does
 * ```
 */
export function defaultSource(): MaintenanceSource {
  return sourceFor(chooseCloud());
}
