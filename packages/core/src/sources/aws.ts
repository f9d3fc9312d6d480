import { parseNotBefore, type ScheduledEvent } from '../document.js';
import { assertOption, FreezeguardError, withDefaults } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { type Clock, systemClock } from '../time/clock.js';
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

/** Options of {@link awsInstanceEvents}. */
export interface AwsInstanceEventsOptions {
  /** IMDS base URL. Default: `FREEZEGUARD_IMDS_ENDPOINT`, else `http://169.254.169.254`. */
  readonly endpoint?: string;
  /** This instance's id as events list it. Default: `FREEZEGUARD_RESOURCE_NAME`, else `instance-id`. */
  readonly resourceName?: string;
  /** Delay between reads. Default 2000 (a Spot interruption gives 2 minutes), ≥ 200. */
  readonly pollIntervalMs?: number;
  /** Per-request timeout. Default 5 s. */
  readonly requestTimeoutMs?: number;
  /** Longest wait between retries while IMDS fails. Default 5 s. */
  readonly maxBackoffMs?: number;
  /** Larger bodies are rejected. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** IMDSv2 session token lifetime, seconds (1–21600). Default 21600. */
  readonly tokenTtlSeconds?: number;
  /**
   * Treat a Spot rebalance recommendation (an early warning of a likely interruption) as
   * an interruption due now. Default false.
   */
  readonly rebalance?: boolean;
}

const DEFAULTS = {
  pollIntervalMs: 2000,
  requestTimeoutMs: 5_000,
  maxBackoffMs: 5_000,
  maxBodyBytes: 1024 * 1024,
  tokenTtlSeconds: 21_600,
  rebalance: false,
};

/** EC2 scheduled-event codes and the Azure event type the lifecycle handles them as. */
export const EC2_EVENT_TYPES: Readonly<Record<string, string>> = {
  'instance-reboot': 'Reboot',
  'system-reboot': 'Reboot',
  // Network maintenance: the instance keeps running and loses connectivity briefly; power
  // maintenance: it is unavailable briefly, then rebooted. Both are handled as a freeze:
  // traffic drained, work paused and data flushed before, everything undone after.
  'system-maintenance': 'Freeze',
  'instance-retirement': 'Terminate',
  'instance-stop': 'Terminate',
};

/**
 * AWS EC2 instance events as a {@link MaintenanceSource}, from IMDS (IMDSv2 session
 * tokens, IMDSv1 only where the token call is not supported). It delivers Azure-shaped
 * documents:
 *
 * - `spot/instance-action` (`terminate`, `stop`, `hibernate`) → `Preempt` with its `time`
 *   as NotBefore (404 means none);
 * - `events/maintenance/scheduled`: `instance-reboot`/`system-reboot` → `Reboot`,
 *   `system-maintenance` → `Freeze`, `instance-retirement`/`instance-stop` → `Terminate`,
 *   with their NotBefore (days ahead: the lifecycle waits for its lead time); `completed`
 *   or `canceled` ones leave the document;
 * - `events/recommendations/rebalance` → `Preempt` due now, only with `rebalance: true`.
 *
 * EC2 has no approval call: `supportsApproval` is false.
 *
 * @example
 * ```ts
 * const guard = createGuard({ source: awsInstanceEvents({ rebalance: true }) });
 * await guard.start();
 * ```
 */
export function awsInstanceEvents(
  options: AwsInstanceEventsOptions = {},
): MaintenanceSource & { readonly endpoint: string; readonly imdsVersion: 1 | 2 | null } {
  const o = withDefaults(DEFAULTS, options);
  const base = parseEndpoint(
    options.endpoint ?? (process.env.FREEZEGUARD_IMDS_ENDPOINT || 'http://169.254.169.254'),
  );
  assertCommonOptions(o);
  assertOption(
    Number.isInteger(o.tokenTtlSeconds) && o.tokenTtlSeconds >= 1 && o.tokenTtlSeconds <= 21_600,
    'tokenTtlSeconds',
    'must be an integer from 1 to 21600 (IMDSv2 limits)',
    o.tokenTtlSeconds,
  );
  const configuredName =
    options.resourceName ?? (process.env.FREEZEGUARD_RESOURCE_NAME || undefined);

  const client = createMetadataClient({
    base,
    label: 'EC2 IMDS',
    headers: {},
    requestTimeoutMs: o.requestTimeoutMs,
    firstRequestTimeoutMs: o.requestTimeoutMs,
    maxBodyBytes: o.maxBodyBytes,
  });
  const tokenUrl = new URL('/latest/api/token', base);
  const metaUrl = (path: string) => new URL(`/latest/meta-data/${path}`, base);
  const documents = documentBuilder();
  let clock: Clock = systemClock;
  let logger: Logger = silentLogger;
  const name = resourceName(configuredName ?? null, async () => {
    const res = await get('instance-id');
    if (res.status !== 200) throw httpError('EC2 IMDS', res, 'instance-id');
    return res.body.toString('utf8').trim();
  });
  // The instance id is the VM's identity even when `resourceName` is configured otherwise.
  const vmId = resourceName(null, async () => {
    const res = await get('instance-id');
    if (res.status !== 200) throw httpError('EC2 IMDS', res, 'instance-id');
    return res.body.toString('utf8').trim();
  });
  let token: { value: string; expiresAt: number } | null = null;
  let version: 1 | 2 | null = null;
  let tokenFetch: Promise<string | null> | null = null;
  let previous: {
    spot: ScheduledEvent | null;
    rebalance: ScheduledEvent | null;
    scheduled: ScheduledEvent[];
  } = {
    spot: null,
    rebalance: null,
    scheduled: [],
  };

  /** A session token, fetched when missing or close to expiry; null when IMDSv1 is in use. */
  function sessionToken(): Promise<string | null> {
    const mono = clock.monotonic();
    if (version === 1) return Promise.resolve(null);
    // Refresh with a tenth of the lifetime (at most a minute) left, never at the edge.
    const margin = Math.min(60_000, (o.tokenTtlSeconds * 1000) / 10);
    if (token && mono < token.expiresAt - margin) return Promise.resolve(token.value);
    tokenFetch ??= fetchToken().finally(() => {
      tokenFetch = null;
    });
    return tokenFetch;
  }

  async function fetchToken(): Promise<string | null> {
    const sentAt = clock.monotonic();
    const res = await client.send(tokenUrl, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(o.tokenTtlSeconds) },
    });
    if (res.status === 200) {
      const value = res.body.toString('utf8').trim();
      if (value === '')
        throw new FreezeguardError('ERR_IMDS_HTTP', 'EC2 IMDS returned an empty token');
      const ttlHeader = Number(res.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      const ttl = Number.isFinite(ttlHeader) && ttlHeader > 0 ? ttlHeader : o.tokenTtlSeconds;
      token = { value, expiresAt: sentAt + ttl * 1000 };
      if (version !== 2) logger.debug({}, 'freezeguard: EC2 IMDSv2 session token acquired');
      version = 2;
      return value;
    }
    // The token call itself is not there (IMDSv1-only environments): fall back, as the
    // AWS SDKs do. 400 means our request was wrong and anything else may pass: no fallback.
    if (res.status === 403 || res.status === 404 || res.status === 405) {
      logger.warn(
        { status: res.status },
        'freezeguard: EC2 IMDS does not support session tokens (IMDSv2); falling back to IMDSv1',
      );
      version = 1;
      token = null;
      return null;
    }
    throw httpError('EC2 IMDS', res, 'PUT /latest/api/token');
  }

  /** GET with the session token; on 401 the token is renewed and the GET tried once more. */
  async function get(path: string): Promise<MetadataResponse> {
    const send = async () => {
      const t = await sessionToken();
      return client.send(
        metaUrl(path),
        t === null ? {} : { headers: { 'X-aws-ec2-metadata-token': t } },
      );
    };
    let res = await send();
    if (res.status === 401) {
      // Expired or revoked token, or IMDSv1 no longer allowed: start a new session.
      token = null;
      if (version === 1) version = null;
      res = await send();
    }
    return res;
  }

  function bad(message: string, cause?: unknown): FreezeguardError {
    return new FreezeguardError('ERR_BAD_DOCUMENT', `EC2 IMDS: ${message}`, { cause });
  }

  function event(id: string, type: string, notBefore: number, description: string) {
    const resources = name.current === null ? [] : [name.current];
    return platformEvent({ id, type, status: 'Scheduled', notBefore, description, resources });
  }

  function json(res: MetadataResponse, what: string): unknown {
    try {
      return JSON.parse(res.body.toString('utf8'));
    } catch (cause) {
      throw bad(`${what} is not JSON`, cause);
    }
  }

  function date(value: unknown, what: string): number {
    if (typeof value !== 'string') throw bad(`${what} must be a date string`);
    try {
      const ms = parseNotBefore(value);
      if (ms === null) throw bad(`${what} is empty`);
      return ms;
    } catch (cause) {
      throw bad(`${what} is not a date: ${JSON.stringify(value.slice(0, 80))}`, cause);
    }
  }

  async function readSpot(): Promise<ScheduledEvent | null> {
    const res = await get('spot/instance-action');
    if (res.status === 404) return null;
    if (res.status !== 200) throw httpError('EC2 IMDS', res, 'spot/instance-action');
    const body = json(res, 'spot/instance-action');
    const action = (body as { action?: unknown })?.action;
    if (typeof action !== 'string' || action === '')
      throw bad('spot/instance-action has no action');
    const at = date((body as { time?: unknown }).time, 'spot/instance-action time');
    return event(`aws-spot-${action}-${at}`, 'Preempt', at, `EC2 Spot interruption: ${action}`);
  }

  async function readRebalance(): Promise<ScheduledEvent | null> {
    const res = await get('events/recommendations/rebalance');
    if (res.status === 404) return null;
    if (res.status !== 200) throw httpError('EC2 IMDS', res, 'events/recommendations/rebalance');
    const at = date(
      (json(res, 'rebalance') as { noticeTime?: unknown })?.noticeTime,
      'rebalance noticeTime',
    );
    return event(
      `aws-rebalance-${at}`,
      'Preempt',
      at,
      'EC2 Spot rebalance recommendation (opted in: handled as an interruption)',
    );
  }

  async function readScheduled(): Promise<ScheduledEvent[]> {
    const res = await get('events/maintenance/scheduled');
    if (res.status === 404) return [];
    if (res.status !== 200) throw httpError('EC2 IMDS', res, 'events/maintenance/scheduled');
    const list = json(res, 'events/maintenance/scheduled');
    if (!Array.isArray(list)) throw bad('events/maintenance/scheduled must be a JSON array');
    const events: ScheduledEvent[] = [];
    list.forEach((raw: unknown, i: number) => {
      if (typeof raw !== 'object' || raw === null) throw bad(`scheduled[${i}] must be an object`);
      const e = raw as Record<string, unknown>;
      const state = typeof e.State === 'string' ? e.State.toLowerCase() : 'active';
      const description = typeof e.Description === 'string' ? e.Description : '';
      // Finished or withdrawn events stay listed for a while; to the lifecycle they are gone.
      if (state === 'completed' || state === 'canceled' || state === 'cancelled') return;
      if (/^\[(completed|canceled|cancelled)\]/i.test(description)) return;
      if (typeof e.Code !== 'string' || e.Code === '')
        throw bad(`scheduled[${i}].Code must be a string`);
      if (typeof e.EventId !== 'string' || e.EventId === '')
        throw bad(`scheduled[${i}].EventId must be a string`);
      const at = date(e.NotBefore, `scheduled[${i}].NotBefore`);
      const type = EC2_EVENT_TYPES[e.Code] ?? e.Code;
      events.push(
        event(
          e.EventId,
          type,
          at,
          `EC2 scheduled event ${e.Code}${description ? `: ${description}` : ''}`,
        ),
      );
    });
    return events;
  }

  async function read() {
    await name.resolve();
    // Each part on its own: a bad scheduled list must not hide a Spot interruption.
    const errors: unknown[] = [];
    const part = async <T>(fn: () => Promise<T>, fallback: T): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        errors.push(err);
        return fallback;
      }
    };
    const spot = await part(readSpot, previous.spot);
    const scheduled = await part(readScheduled, previous.scheduled);
    const rebalance = o.rebalance ? await part(readRebalance, previous.rebalance) : null;
    if (errors.length === 3 || (!o.rebalance && errors.length === 2)) throw errors[0];
    previous = { spot, scheduled, rebalance };
    const events = [...(spot ? [spot] : []), ...(rebalance ? [rebalance] : []), ...scheduled];
    const document = documents.build(events);
    return errors.length === 0 ? { document } : { document, error: errors[0] };
  }

  const loop = createPollLoop({
    label: 'EC2 instance events',
    client,
    intervalMs: o.pollIntervalMs,
    maxBackoffMs: o.maxBackoffMs,
    read,
  });

  return {
    kind: 'ec2-imds',
    endpoint: base.origin,
    get imdsVersion() {
      return version;
    },
    ...noApproval(
      'EC2 has no call to start an instance event early; approval applies to Azure only',
    ),
    ...pollLifecycle(client, loop, (context) => {
      clock = context.clock;
      logger = context.logger;
    }),
    async resolveResourceName() {
      return (await name.resolve()) ?? undefined;
    },
    async resolveVmId() {
      return (await vmId.resolve()) ?? undefined;
    },
  };
}
