import { assertOption, FreezeguardError, withDefaults } from '../errors.js';
import type { MaintenanceEvent } from '../event.js';
import { type Clock, systemClock, systemTimers, type Timers } from '../time/clock.js';
import { isNoNotificationsYet, parseUpcomingMaintenance, STOPPING_VALUES } from './gcp-values.js';
import {
  assertCommonOptions,
  createMetadataClient,
  documentBuilder,
  httpError,
  type MetadataResponse,
  parseEndpoint,
} from './metadata-http.js';
import { createPollLoop } from './poll-loop.js';
import { noApproval, platformEvent, pollLifecycle, resourceName } from './polled-source.js';
import type { MaintenanceSource } from './source.js';

/** Options of {@link gcpMaintenanceEvents}. */
export interface GcpMaintenanceEventsOptions {
  /** Metadata server base URL. Default: `FREEZEGUARD_IMDS_ENDPOINT`, else `http://metadata.google.internal`. */
  readonly endpoint?: string;
  /** This VM's name as events list it. Default: `FREEZEGUARD_RESOURCE_NAME`, else `instance/name`. */
  readonly resourceName?: string;
  /**
   * How long one hanging GET waits for a change (`timeout_sec`), seconds. Default 60. The
   * request timeout is this plus `requestTimeoutMs`.
   */
  readonly hangTimeoutSec?: number;
  /** Pause between reads of a key that cannot hang (first reads, retries). Default 1000, ≥ 200. */
  readonly pollIntervalMs?: number;
  /** Timeout of a plain request, and the margin added to a hanging one. Default 10 s. */
  readonly requestTimeoutMs?: number;
  /** Longest wait between retries while the metadata server fails. Default 5 s. */
  readonly maxBackoffMs?: number;
  /** Larger bodies are rejected. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** Watch `instance/upcoming-maintenance` (scheduled windows, where GCE offers them). Default true. */
  readonly upcomingMaintenance?: boolean;
  /** When `upcoming-maintenance` answers 404 (not offered here), ask again after this long. Default 5 min. */
  readonly upcomingRecheckMs?: number;
}

const DEFAULTS = {
  hangTimeoutSec: 60,
  pollIntervalMs: 1000,
  requestTimeoutMs: 10_000,
  maxBackoffMs: 5_000,
  maxBodyBytes: 1024 * 1024,
  upcomingMaintenance: true,
  upcomingRecheckMs: 5 * 60_000,
};

/** GCE changes `maintenance-event` about this long before a migration or termination starts. */
export const GCE_MAINTENANCE_NOTICE_MS = 60_000;
/** A preempted (Spot) VM gets about this long between `preempted` turning TRUE and its stop. */
export const GCE_PREEMPTION_NOTICE_MS = 30_000;

/**
 * The metadata server base URL a GCE source uses when given none.
 *
 * @example
 * ```ts
 * defaultGcpEndpoint(); // 'http://metadata.google.internal'
 * ```
 */
export function defaultGcpEndpoint(): string {
  return process.env.FREEZEGUARD_IMDS_ENDPOINT || 'http://metadata.google.internal';
}

type Key = 'maintenance' | 'preempted' | 'upcoming';

interface Watch {
  readonly key: Key;
  readonly path: string;
  /** Query parameters every request of this key carries (`alt=json`), or ''. */
  readonly alt: string;
  etag: string | null;
  value: string | null;
  /** Monotonic ms before which this key is not asked again (404 rechecks, retries). */
  nextAt: number;
  pending: Promise<Settled> | null;
}

type Settled =
  | { readonly watch: Watch; readonly res: MetadataResponse }
  | { readonly watch: Watch; readonly error: unknown };

/** What the source remembers of one sighting, so EventIds and NotBefore stay stable. */
interface Sighting {
  readonly value: string;
  readonly since: number;
}

/**
 * Google Compute Engine host maintenance as a {@link MaintenanceSource}, from the metadata
 * server. It delivers the same MaintenanceDocuments as every source:
 *
 * - `instance/maintenance-event` `MIGRATE_ON_HOST_MAINTENANCE` → a `Freeze`, `Started`
 *   (the live migration's blackout can come any moment after the ~60 s notice); it leaves
 *   the document when the value returns to `NONE`.
 * - `TERMINATE_ON_HOST_MAINTENANCE`, `SHUTDOWN_ON_HOST_MAINTENANCE` → `Terminate`,
 *   NotBefore 60 s after it was seen.
 * - `instance/preempted` `TRUE` → `Preempt`, NotBefore 30 s after it was seen.
 * - `instance/upcoming-maintenance` windows (read with `?alt=json`: snake_case, string
 *   values; `{ }` and the 503 "no notifications have been received yet" mean no window),
 *   on VMs that stop for maintenance → `Terminate` with the window start as NotBefore
 *   (live-migrated VMs get their 60 s notice anyway).
 *
 * Keys are watched with hanging GETs (`wait_for_change=true&last_etag=…&timeout_sec=…`),
 * never tight polling; every request sends `Metadata-Flavor: Google` and every answer
 * must carry it back. GCE has no approval call: `supportsApproval` is false.
 *
 * @example
 * ```ts
 * const guard = createGuard({ source: gcpMaintenanceEvents() });
 * await guard.start();
 * ```
 */
export function gcpMaintenanceEvents(
  options: GcpMaintenanceEventsOptions = {},
): MaintenanceSource & { readonly endpoint: string } {
  const o = withDefaults(DEFAULTS, options);
  const base = parseEndpoint(options.endpoint ?? defaultGcpEndpoint());
  assertCommonOptions(o);
  assertOption(
    Number.isInteger(o.hangTimeoutSec) && o.hangTimeoutSec >= 1 && o.hangTimeoutSec <= 3600,
    'hangTimeoutSec',
    'must be an integer from 1 to 3600',
    o.hangTimeoutSec,
  );
  assertOption(o.upcomingRecheckMs > 0, 'upcomingRecheckMs', 'must be > 0', o.upcomingRecheckMs);
  const configuredName = options.resourceName ?? process.env.FREEZEGUARD_RESOURCE_NAME;

  const client = createMetadataClient({
    base,
    label: 'GCE metadata server',
    headers: { 'Metadata-Flavor': 'Google' },
    requestTimeoutMs: o.requestTimeoutMs,
    firstRequestTimeoutMs: o.requestTimeoutMs,
    maxBodyBytes: o.maxBodyBytes,
  });
  const url = (path: string) => new URL(`/computeMetadata/v1/instance/${path}`, base);
  const watches: Watch[] = [
    watch('maintenance', 'maintenance-event'),
    watch('preempted', 'preempted'),
    // Served as JSON only when asked for it.
    ...(o.upcomingMaintenance ? [watch('upcoming', 'upcoming-maintenance', 'alt=json')] : []),
  ];
  const documents = documentBuilder();
  let clock: Clock = systemClock;
  let timers: Timers = systemTimers;
  const name = resourceName(configuredName ?? null, () => text('name'));
  const vmId = resourceName(null, () => text('id'));
  let onHostMaintenance: string | null = null;
  const sightings: Partial<Record<Key, Sighting>> = {};

  function watch(key: Key, path: string, alt = ''): Watch {
    return { key, path, alt, etag: null, value: null, nextAt: 0, pending: null };
  }

  /** A GET whose answer must come from the metadata server itself. */
  async function get(path: string, query = '', timeoutMs?: number): Promise<MetadataResponse> {
    const res = await client.send(new URL(`${url(path).href}${query}`), {
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
    if (res.headers['metadata-flavor'] !== 'Google') {
      throw new FreezeguardError(
        'ERR_IMDS_HTTP',
        `GCE metadata ${path}: the answer (${res.status}) lacks Metadata-Flavor: Google, so it did not come from the metadata server`,
        { details: { status: res.status, retryable: true } },
      );
    }
    return res;
  }

  async function text(path: string): Promise<string> {
    const res = await get(path);
    if (res.status !== 200) throw httpError('GCE metadata server', res, path);
    return res.body.toString('utf8').trim();
  }

  function request(w: Watch): Promise<Settled> {
    const params = [
      ...(w.alt ? [w.alt] : []),
      ...(w.etag !== null
        ? [
            `wait_for_change=true&last_etag=${encodeURIComponent(w.etag)}&timeout_sec=${o.hangTimeoutSec}`,
          ]
        : []),
    ];
    const query = params.length > 0 ? `?${params.join('&')}` : '';
    const timeoutMs =
      w.etag !== null ? o.hangTimeoutSec * 1000 + o.requestTimeoutMs : o.requestTimeoutMs;
    return get(w.path, query, timeoutMs).then(
      (res) => ({ watch: w, res }),
      (error: unknown) => ({ watch: w, error }),
    );
  }

  /** Applies one answer; throws when it is unusable (the key keeps its previous value). */
  function apply(w: Watch, res: MetadataResponse, now: number): void {
    if (w.key === 'upcoming' && (res.status === 404 || isNoNotificationsYet(res))) {
      // 404: not offered for this VM or zone. 503 "no notifications have been received
      // yet": nothing announced since boot. Neither is a failure: no window, look again later.
      w.value = null;
      w.etag = null;
      w.nextAt = now + o.upcomingRecheckMs;
      return;
    }
    if (res.status !== 200) throw httpError('GCE metadata server', res, w.path);
    const value = res.body.toString('utf8').trim();
    const tag = res.headers.etag;
    // The ETag is kept even for a bad value, so the next hanging GET waits for a change
    // instead of fetching the same bad value again and again.
    w.etag = typeof tag === 'string' && tag !== '' ? tag : null;
    if (w.key === 'maintenance' && !/^[A-Z_]{1,64}$/.test(value)) {
      throw bad(
        `maintenance-event is not a maintenance value: ${JSON.stringify(value.slice(0, 80))}`,
      );
    }
    if (w.key === 'preempted' && value !== 'TRUE' && value !== 'FALSE') {
      throw bad(`preempted must be TRUE or FALSE, got ${JSON.stringify(value.slice(0, 80))}`);
    }
    if (w.key === 'upcoming') parseUpcomingMaintenance(value);
    w.value = value;
  }

  function bad(message: string): FreezeguardError {
    return new FreezeguardError('ERR_BAD_DOCUMENT', `GCE metadata: ${message}`);
  }

  /** Remembers when a value was first seen; forgets it when it goes away. */
  function sighting(key: Key, value: string | null, now: number): Sighting | null {
    const old = sightings[key];
    if (value === null) {
      delete sightings[key];
      return null;
    }
    if (old && old.value === value) return old;
    const fresh = { value, since: now };
    sightings[key] = fresh;
    return fresh;
  }

  function buildEvents(now: number): MaintenanceEvent[] {
    const resources = name.current === null ? [] : [name.current];
    const events: MaintenanceEvent[] = [];
    const event = (
      id: string,
      type: string,
      status: 'Scheduled' | 'Started',
      notBefore: number,
      description: string,
    ): MaintenanceEvent =>
      platformEvent({
        id,
        type,
        status,
        notBefore: Math.ceil(notBefore / 1000) * 1000,
        description,
        resources,
      });

    const maintenance = watches[0]!.value;
    const m = sighting(
      'maintenance',
      maintenance && maintenance !== 'NONE' ? maintenance : null,
      now,
    );
    if (m) {
      const id = `gce-maintenance-${m.since}`;
      if (m.value === 'MIGRATE_ON_HOST_MAINTENANCE') {
        events.push(
          event(
            id,
            'Freeze',
            'Started',
            m.since,
            'GCE live migration (maintenance-event MIGRATE_ON_HOST_MAINTENANCE)',
          ),
        );
      } else if (STOPPING_VALUES.has(m.value)) {
        events.push(
          event(
            id,
            'Terminate',
            'Scheduled',
            m.since + GCE_MAINTENANCE_NOTICE_MS,
            `GCE host maintenance stops this VM (maintenance-event ${m.value})`,
          ),
        );
      } else {
        // A value GCE may add later: kept visible, under its own name, never acted on.
        events.push(
          event(
            id,
            m.value,
            'Scheduled',
            m.since + GCE_MAINTENANCE_NOTICE_MS,
            `GCE maintenance-event ${m.value}`,
          ),
        );
      }
    }
    const p = sighting('preempted', watches[1]!.value === 'TRUE' ? 'TRUE' : null, now);
    if (p) {
      events.push(
        event(
          `gce-preempted-${p.since}`,
          'Preempt',
          'Scheduled',
          p.since + GCE_PREEMPTION_NOTICE_MS,
          'GCE preemption: this Spot/preemptible VM is being stopped (preempted TRUE)',
        ),
      );
    }
    const upcoming = watches[2]?.value ? parseUpcomingMaintenance(watches[2].value) : null;
    // Live-migrated VMs get maintenance-event's 60 s notice right before the blackout; a
    // window hours wide would only drain them early. VMs that stop need the early notice.
    if (upcoming && onHostMaintenance === 'TERMINATE') {
      events.push(
        event(
          `gce-upcoming-${upcoming.start}`,
          'Terminate',
          'Scheduled',
          upcoming.start,
          `GCE ${upcoming.type.toLowerCase()} maintenance window (${upcoming.status}) stops this VM`,
        ),
      );
    }
    return events;
  }

  async function prime(): Promise<void> {
    await name.resolve();
    if (onHostMaintenance === null && o.upcomingMaintenance) {
      onHostMaintenance = await text('scheduling/on-host-maintenance').catch(() => 'UNKNOWN');
    }
  }

  async function read() {
    await prime();
    const mono = clock.monotonic();
    for (const w of watches) if (w.pending === null && mono >= w.nextAt) w.pending = request(w);
    const inflight: Promise<Settled | null>[] = watches.flatMap((w) =>
      w.pending ? [w.pending] : [],
    );
    // A key waiting to be asked again (a 404 or 503 upcoming-maintenance) is asked when
    // its time comes, not only when a hanging GET of another key happens to return.
    const idle = watches.filter((w) => w.pending === null).map((w) => w.nextAt);
    let timer: unknown = null;
    if (idle.length > 0 && inflight.length > 0) {
      const ms = Math.max(0, Math.min(...idle) - mono);
      inflight.push(
        new Promise<null>((resolve) => {
          timer = timers.setTimeout(() => resolve(null), ms);
        }),
      );
    }
    let error: unknown;
    if (inflight.length > 0) {
      const settled = await Promise.race(inflight).finally(() => {
        if (timer !== null) timers.clearTimeout(timer);
      });
      if (settled === null)
        return { document: documents.build(buildEvents(clock.now())), nextInMs: 0 };
      settled.watch.pending = null;
      try {
        if ('error' in settled) throw settled.error;
        apply(settled.watch, settled.res, clock.monotonic());
      } catch (err) {
        error = err;
      }
    }
    const document = documents.build(buildEvents(clock.now()));
    // Hanging GETs pace themselves; the client's spacing gate keeps starts ≥ 200 ms apart.
    return error === undefined ? { document, nextInMs: 0 } : { document, error };
  }

  const loop = createPollLoop({
    label: 'GCE maintenance metadata',
    client,
    intervalMs: o.pollIntervalMs,
    maxBackoffMs: o.maxBackoffMs,
    read,
  });

  return {
    kind: 'gce-metadata',
    endpoint: base.origin,
    ...noApproval('GCE has no call to start maintenance early; approval applies to Azure only'),
    ...pollLifecycle(client, loop, (context) => {
      clock = context.clock;
      timers = context.timers;
    }),
    async resolveResourceName() {
      return (await name.resolve()) ?? undefined;
    },
    async resolveVmId() {
      return (await vmId.resolve()) ?? undefined;
    },
  };
}
