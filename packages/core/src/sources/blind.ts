import type { SourceHealth } from './source.js';

/*
 * When is a guard blind? A pure function of the source's health and the clock, so the
 * rule is tested with numbers and every source (polled, relayed by a fleet, in memory)
 * is judged the same way.
 */

/** What {@link sourceBlindness} judges from. */
export interface BlindnessFacts {
  readonly health: SourceHealth;
  /** Wall-clock ms the guard began watching. */
  readonly startedAt: number;
  readonly now: number;
  /** No good answer for this long makes the source blind. */
  readonly blindAfterMs: number;
}

/** The verdict of {@link sourceBlindness}. */
export interface Blindness {
  readonly blind: boolean;
  /** Wall-clock ms since which no good answer came: the start, or the last good answer. */
  readonly since: number;
  /** Why, for the log line and `status()`: the last error, or that nothing answered. */
  readonly cause: string;
}

/**
 * Blind when no good answer came for `blindAfterMs`, counted from the start or from the
 * last good answer, whether the source answered errors or nothing at all. After a good
 * answer, a read still waiting (a GCE hanging GET, up to a minute) is not blindness: it
 * is silent by design, and its own timeout turns a dead endpoint into errors.
 *
 * @example
 * ```ts
 * sourceBlindness({ health: source.health(), startedAt, now: Date.now(), blindAfterMs: 30_000 });
 * // { blind: true, since: startedAt, cause: 'no answer yet' }
 * ```
 */
export function sourceBlindness(f: BlindnessFacts): Blindness {
  const h = f.health;
  const since = Math.max(f.startedAt, h.lastSuccessAt ?? Number.NEGATIVE_INFINITY);
  const cause =
    h.consecutiveFailures > 0 && h.lastError
      ? `${h.lastError.code}: ${h.lastError.message}`
      : h.lastSuccessAt === null
        ? 'no answer yet'
        : 'no answer since the last good one';
  const waitingAfterGood =
    h.consecutiveFailures === 0 &&
    h.lastSuccessAt !== null &&
    h.readingSince !== undefined &&
    h.readingSince !== null;
  return { blind: !waitingAfterGood && f.now - since >= f.blindAfterMs, since, cause };
}

/**
 * What usually keeps a process from its metadata service, for the blind-source log line
 * and `ERR_SOURCE_BLIND`. ASCII, one line.
 *
 * @example
 * ```ts
 * blindRemedy('ec2-imds'); // 'on EKS, set the instance metadata option HttpPutResponseHopLimit to 2 ...'
 * ```
 */
export function blindRemedy(kind: string): string {
  const aks =
    'on AKS, let pods reach IMDS (podLinkLocalAccess must not be None; it is IMDS by default)';
  const eks =
    'on EKS, set the instance metadata option HttpPutResponseHopLimit to 2 so a pod gets an IMDSv2 token';
  const gke = 'on GKE, check that the node metadata server (GKE metadata server) answers the pod';
  const proxy =
    'behind an egress proxy or service mesh, exempt 169.254.169.254 and metadata.google.internal (NO_PROXY)';
  const local =
    'off a cloud, point FREEZEGUARD_IMDS_ENDPOINT at @freezeguard/simulator or unset FREEZEGUARD_CLOUD';
  const first = kind.startsWith('ec2') ? [eks, aks] : kind.startsWith('gce') ? [gke] : [aks, eks];
  return [...first, proxy, local].join('; ');
}
