import { FreezeguardError } from '../errors.js';

/**
 * Load balancers whose health-probe defaults freezeguard knows. Each one's figures come
 * from its vendor's documentation (cited in the core README).
 */
export type BalancerPreset =
  | 'azure-lb'
  | 'azure-app-gateway'
  | 'kubernetes'
  | 'aws-alb'
  | 'aws-nlb'
  | 'gcp-lb';

/** How a balancer probes: every `intervalMs`, out after `unhealthyThreshold` failures in a row. */
export interface BalancerProfile {
  readonly intervalMs: number;
  readonly unhealthyThreshold: number;
}

/** A preset's name or the figures of a balancer configured by hand. */
export type BalancerOption = BalancerPreset | BalancerProfile;

/** The vendors' defaults; where the figures come from is in the core README. */
export const BALANCER_PRESETS: Readonly<Record<BalancerPreset, BalancerProfile>> = {
  // probeThreshold defaults to 1: out on the first failed probe.
  'azure-lb': { intervalMs: 5_000, unhealthyThreshold: 1 },
  'azure-app-gateway': { intervalMs: 30_000, unhealthyThreshold: 3 },
  // readinessProbe periodSeconds 10, failureThreshold 3.
  kubernetes: { intervalMs: 10_000, unhealthyThreshold: 3 },
  'aws-alb': { intervalMs: 30_000, unhealthyThreshold: 2 },
  'aws-nlb': { intervalMs: 30_000, unhealthyThreshold: 2 },
  'gcp-lb': { intervalMs: 5_000, unhealthyThreshold: 2 },
};

/**
 * The figures of a preset, or the given profile checked. Throws `ERR_BAD_OPTION` naming
 * `option` for an unknown preset or a nonsensical profile.
 *
 * @example
 * ```ts
 * resolveBalancer('kubernetes'); // { intervalMs: 10000, unhealthyThreshold: 3 }
 * resolveBalancer({ intervalMs: 8000, unhealthyThreshold: 3 });
 * ```
 */
export function resolveBalancer(value: BalancerOption, option = 'lb'): BalancerProfile {
  if (typeof value === 'string') {
    const preset = BALANCER_PRESETS[value as BalancerPreset];
    if (preset && Object.hasOwn(BALANCER_PRESETS, value)) return preset;
    throw new FreezeguardError(
      'ERR_BAD_OPTION',
      `${option}: unknown balancer preset ${JSON.stringify(value)}; one of ${Object.keys(BALANCER_PRESETS).join(', ')}, or { intervalMs, unhealthyThreshold }`,
      { details: { option, value } },
    );
  }
  const ok =
    typeof value === 'object' &&
    value !== null &&
    Number.isFinite(value.intervalMs) &&
    value.intervalMs > 0 &&
    Number.isInteger(value.unhealthyThreshold) &&
    value.unhealthyThreshold >= 1;
  if (!ok) {
    throw new FreezeguardError(
      'ERR_BAD_OPTION',
      `${option}: must be a preset name or { intervalMs > 0, unhealthyThreshold: integer >= 1 }`,
      { details: { option, value: value as unknown } },
    );
  }
  return { intervalMs: value.intervalMs, unhealthyThreshold: value.unhealthyThreshold };
}

/** Timings that follow from a balancer profile. */
export interface BalancerTimings {
  /** The longest the balancer can take to see its failures: one interval more than the failures themselves (a probe may have passed just before readiness failed). */
  readonly detectionMs: number;
  /** The cap on waiting for the balancer to confirm the drain. */
  readonly drainDelayMs: number;
  /** When preparing starts before NotBefore: the drain cap plus time for the other phases. */
  readonly leadTimeMs: number;
}

/** Room for in-flight requests to finish and for the `work` and `data` phases. */
const PHASES_MS = 30_000;
/** Slack for probe timeouts and a slow answer. */
const SLACK_MS = 2_000;
/** The guard's default lead time: never prepare later than this. */
const MIN_LEAD_MS = 60_000;

/**
 * Derives the drain cap and the lead time from how the balancer probes.
 *
 * @example
 * ```ts
 * balancerTimings(resolveBalancer('kubernetes'));
 * // { detectionMs: 40000, drainDelayMs: 42000, leadTimeMs: 72000 }
 * ```
 */
export function balancerTimings(profile: BalancerProfile): BalancerTimings {
  const detectionMs = profile.intervalMs * (profile.unhealthyThreshold + 1);
  const drainDelayMs = detectionMs + SLACK_MS;
  return {
    detectionMs,
    drainDelayMs,
    leadTimeMs: Math.max(MIN_LEAD_MS, drainDelayMs + PHASES_MS),
  };
}

/** The shortest notice each platform gives for an event it announces, ms. */
export const SHORTEST_NOTICE_MS: readonly {
  readonly what: string;
  readonly ms: number;
  /** The `kind` of the source that announces it. */
  readonly source: string;
}[] = [
  { what: 'Azure Preempt (Spot eviction)', ms: 30_000, source: 'azure-imds' },
  { what: 'GCE preemption', ms: 30_000, source: 'gce-metadata' },
  { what: 'EC2 Spot interruption', ms: 120_000, source: 'ec2-imds' },
];

/**
 * The notices a balancer cannot drain in time: the warning the guard logs at start.
 *
 * @example
 * ```ts
 * tooShortNotices(resolveBalancer('aws-alb')); // ['Azure Preempt (Spot eviction)', 'GCE preemption']
 * tooShortNotices(resolveBalancer('aws-alb'), 'ec2-imds'); // []
 * ```
 */
export function tooShortNotices(profile: BalancerProfile, source?: string): string[] {
  const { detectionMs } = balancerTimings(profile);
  return SHORTEST_NOTICE_MS.filter(
    (n) => detectionMs > n.ms && (source === undefined || n.source === source),
  ).map((n) => n.what);
}

/**
 * Reads `FREEZEGUARD_LB`: a preset name, or `<intervalMs>x<unhealthyThreshold>` for a
 * balancer configured by hand (`8000x3`). Unset or empty: undefined. Anything else throws
 * `ERR_BAD_OPTION` naming the variable.
 *
 * @example
 * ```ts
 * balancerFromEnv('kubernetes'); // { intervalMs: 10000, unhealthyThreshold: 3 }
 * balancerFromEnv('500x2'); // { intervalMs: 500, unhealthyThreshold: 2 }
 * ```
 */
export function balancerFromEnv(value: string | undefined): BalancerProfile | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const m = /^\s*(\d+)\s*x\s*(\d+)\s*$/i.exec(value);
  if (m) {
    return resolveBalancer(
      { intervalMs: Number(m[1]), unhealthyThreshold: Number(m[2]) },
      'FREEZEGUARD_LB',
    );
  }
  return resolveBalancer(value.trim() as BalancerPreset, 'FREEZEGUARD_LB');
}
