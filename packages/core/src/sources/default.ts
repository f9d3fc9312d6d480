import { hostname } from 'node:os';
import { FreezeguardError } from '../errors.js';
import { awsInstanceEvents } from './aws.js';
import { azureScheduledEvents } from './azure.js';
import { CLOUD_NAMES, type CloudName, type DetectCloudOptions, detectCloudSync } from './detect.js';
import { gcpMaintenanceEvents } from './gcp.js';
import type { MaintenanceSource, SourceHealth } from './source.js';

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
 * guard never imports a concrete cloud: only the package entry decides. With no cloud at
 * all (no DMI match, neither `FREEZEGUARD_CLOUD` nor `FREEZEGUARD_IMDS_ENDPOINT` set: a
 * laptop, CI, a cloud whose firmware we do not know) it is {@link noCloudSource}: one
 * info line, no polling, and never blind, since nothing is expected to answer.
 *
 * @example
 * ```ts
 * const guard = createGuard({ source: defaultSource() }); // what createGuard() does
 * ```
 */
export function defaultSource(
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: DetectCloudOptions = {},
): MaintenanceSource {
  const configured = Boolean(env.FREEZEGUARD_CLOUD?.trim() || env.FREEZEGUARD_IMDS_ENDPOINT);
  if (!configured && detectCloudSync(options) === null) return noCloudSource();
  return sourceFor(chooseCloud(env, options));
}

/**
 * A source that reads nothing (kind `none`, `watching: false`): what {@link defaultSource}
 * picks off any cloud. `start()` logs once why it does not poll; `requireSource` makes
 * the guard's `start()` reject with `ERR_SOURCE_BLIND` instead.
 *
 * @example
 * ```ts
 * const guard = createGuard({ source: noCloudSource() }); // a guard that only drains on shutdown()
 * ```
 */
export function noCloudSource(): MaintenanceSource {
  const health: SourceHealth = {
    lastSuccessAt: null,
    lastErrorAt: null,
    lastError: null,
    consecutiveFailures: 0,
    requests: 0,
  };
  let said = false;
  return {
    kind: 'none',
    watching: false,
    supportsApproval: false,
    start(context) {
      if (said) return;
      said = true;
      context.logger.info(
        {},
        'freezeguard: no cloud detected (no Azure, GCE or EC2 firmware; FREEZEGUARD_CLOUD and FREEZEGUARD_IMDS_ENDPOINT unset); not polling for maintenance. Set one of them to watch a metadata service',
      );
    },
    async stop() {},
    async resolveResourceName() {
      // No event will ever name this machine; the host name keeps the guard from retrying.
      return hostname() || 'localhost';
    },
    async approve() {
      throw new FreezeguardError(
        'ERR_APPROVAL_UNSUPPORTED',
        'no cloud detected: nothing to approve',
      );
    },
    health: () => health,
  };
}
