import { assertOption, FreezeguardError, withDefaults } from '../errors.js';
import type { MaintenanceEvent } from '../event.js';
import { type Logger, silentLogger } from '../logger.js';
import { type Clock, systemClock } from '../time/clock.js';
import {
  type Ec2EventEnd,
  type Ec2EventList,
  ec2Date,
  ec2EventEnd,
  parseEc2EventList,
} from './aws-events.js';
import { createImdsSession, EC2_TOKEN_HEADER, type ImdsSessionHealth } from './aws-token.js';
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
import type { MaintenanceSource, SourceHealth } from './source.js';

/** `health()` of {@link awsInstanceEvents}: the poll loop's, plus how it talks to IMDS. */
export interface AwsSourceHealth extends SourceHealth {
  /** IMDSv2 or the IMDSv1 fallback, and why. */
  readonly imds: ImdsSessionHealth;
}

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
   * Timeout of the token PUT. Default 2000. A PUT that times out (an IMDSv2 hop limit of 1
   * seen from a container), cannot connect, or answers 403/404/405 falls back to IMDSv1
   * GETs, as the AWS SDKs do.
   */
  readonly tokenTimeoutMs?: number;
  /** While on IMDSv1 after such a failure, a token PUT is tried again this often. Default 5 min. */
  readonly tokenRetryMs?: number;
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
  tokenTimeoutMs: 2_000,
  tokenRetryMs: 5 * 60_000,
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
 * AWS EC2 instance events as a {@link MaintenanceSource}, from IMDS. It uses IMDSv2
 * session tokens and, as the AWS SDKs do, falls back to IMDSv1 GETs when the token PUT
 * times out (an IMDSv2 hop limit of 1 seen from a container), cannot connect, or answers
 * 403/404/405; it then tries a token again every `tokenRetryMs` and says so in `health().imds`.
 * It delivers MaintenanceDocuments:
 *
 * - `spot/instance-action` (`terminate`, `stop`, `hibernate`) → `Preempt` with its `time`
 *   as NotBefore (404 means none);
 * - `events/maintenance/scheduled`: `instance-reboot`/`system-reboot` → `Reboot`,
 *   `system-maintenance` → `Freeze`, `instance-retirement`/`instance-stop` → `Terminate`,
 *   with their NotBefore (days ahead: the lifecycle waits for its lead time). EC2 never
 *   says an event started: when one leaves the active list (State `completed`/`canceled`,
 *   or moved to `events/maintenance/history`), a completed one is listed once as
 *   `Started` and then leaves, so the cycle ends as resumed; a canceled one just leaves
 *   (cancelled). Where EC2 does not say which, an event gone after its NotBefore completed;
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
export function awsInstanceEvents(options: AwsInstanceEventsOptions = {}): Omit<
  MaintenanceSource,
  'health'
> & {
  readonly endpoint: string;
  readonly imdsVersion: 1 | 2 | null;
  health(): AwsSourceHealth;
} {
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
  assertOption(o.tokenTimeoutMs > 0, 'tokenTimeoutMs', 'must be > 0', o.tokenTimeoutMs);
  assertOption(o.tokenRetryMs > 0, 'tokenRetryMs', 'must be > 0', o.tokenRetryMs);
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
  const metaUrl = (path: string) => new URL(`/latest/meta-data/${path}`, base);
  const documents = documentBuilder();
  let clock: Clock = systemClock;
  let logger: Logger = silentLogger;
  const session = createImdsSession({
    client,
    tokenUrl: new URL('/latest/api/token', base),
    ttlSeconds: o.tokenTtlSeconds,
    timeoutMs: o.tokenTimeoutMs,
    retryMs: o.tokenRetryMs,
    clock: () => clock,
    logger: () => logger,
  });
  const instanceId = async () => {
    const res = await get('instance-id');
    if (res.status !== 200) throw httpError('EC2 IMDS', res, 'instance-id');
    return res.body.toString('utf8').trim();
  };
  const name = resourceName(configuredName ?? null, instanceId);
  // The instance id is the VM's identity even when `resourceName` is configured otherwise.
  const vmId = resourceName(null, instanceId);
  let previous: {
    spot: MaintenanceEvent | null;
    rebalance: MaintenanceEvent | null;
    scheduled: MaintenanceEvent[];
  } = { spot: null, rebalance: null, scheduled: [] };

  /** GET with the session token (none on IMDSv1); on 401 a new session, and the GET once more. */
  async function get(path: string): Promise<MetadataResponse> {
    const send = async () => {
      const t = await session.token();
      const res = await client.send(
        metaUrl(path),
        t === null ? {} : { headers: { [EC2_TOKEN_HEADER]: t } },
      );
      if (t !== null) session.observe(res);
      return res;
    };
    let res = await send();
    if (res.status === 401) {
      // Expired or revoked token, or IMDSv1 no longer allowed: start a new session.
      session.invalidate();
      res = await send();
    }
    return res;
  }

  function bad(message: string, cause?: unknown): FreezeguardError {
    return new FreezeguardError('ERR_BAD_DOCUMENT', `EC2 IMDS: ${message}`, { cause });
  }

  function event(
    id: string,
    type: string,
    notBefore: number,
    description: string,
    status: 'Scheduled' | 'Started' = 'Scheduled',
  ) {
    const resources = name.current === null ? [] : [name.current];
    return platformEvent({ id, type, status, notBefore, description, resources });
  }

  function json(res: MetadataResponse, what: string): unknown {
    try {
      return JSON.parse(res.body.toString('utf8'));
    } catch (cause) {
      throw bad(`${what} is not JSON`, cause);
    }
  }

  async function readSpot(): Promise<MaintenanceEvent | null> {
    const res = await get('spot/instance-action');
    if (res.status === 404) return null;
    if (res.status !== 200) throw httpError('EC2 IMDS', res, 'spot/instance-action');
    const body = json(res, 'spot/instance-action');
    const action = (body as { action?: unknown })?.action;
    if (typeof action !== 'string' || action === '')
      throw bad('spot/instance-action has no action');
    const at = ec2Date((body as { time?: unknown }).time, 'spot/instance-action time');
    return event(`aws-spot-${action}-${at}`, 'Preempt', at, `EC2 Spot interruption: ${action}`);
  }

  async function readRebalance(): Promise<MaintenanceEvent | null> {
    const res = await get('events/recommendations/rebalance');
    if (res.status === 404) return null;
    if (res.status !== 200) throw httpError('EC2 IMDS', res, 'events/recommendations/rebalance');
    const at = ec2Date(
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

  async function readList(path: string): Promise<Ec2EventList> {
    const res = await get(path);
    if (res.status === 404) return { active: [], ended: new Map() };
    if (res.status !== 200) throw httpError('EC2 IMDS', res, path);
    return parseEc2EventList(json(res, path), path);
  }

  /**
   * The active scheduled events, plus each one that left since the last read and
   * completed, listed once more as `Started`: EC2 never says an event started, and to the
   * lifecycle an event that leaves without having started was cancelled.
   */
  async function readScheduled(): Promise<{ events: MaintenanceEvent[]; completed: number }> {
    const list = await readList('events/maintenance/scheduled');
    const events = list.active.map((e) =>
      event(
        e.id,
        EC2_EVENT_TYPES[e.code] ?? e.code,
        e.notBefore,
        `EC2 scheduled event ${e.code}${e.description ? `: ${e.description}` : ''}`,
      ),
    );
    const listed = new Set(events.map((e) => e.id));
    const gone = previous.scheduled.filter((e) => e.status === 'Scheduled' && !listed.has(e.id));
    let history: ReadonlyMap<string, Ec2EventEnd> | null = null;
    let completed = 0;
    for (const e of gone) {
      let said = list.ended.get(e.id);
      if (said === undefined) {
        // Asked only when an event left: EC2 moves finished events to history.
        history ??= await readList('events/maintenance/history').then(
          (h) => h.ended,
          () => new Map(),
        );
        said = history.get(e.id);
      }
      const end = ec2EventEnd({ said, notBefore: e.notBefore ?? 0, now: clock.now() });
      logger.info(
        { eventId: e.id, end, stated: said !== undefined },
        `freezeguard: EC2 scheduled event ${end === 'completed' ? 'completed' : 'canceled'}`,
      );
      if (end !== 'completed') continue;
      events.push(
        event(e.id, e.kind, e.notBefore ?? clock.now(), `${e.description} (completed)`, 'Started'),
      );
      completed++;
    }
    return { events, completed };
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
    const { events: scheduled, completed } = await part(readScheduled, {
      events: previous.scheduled.filter((e) => e.status === 'Scheduled'),
      completed: 0,
    });
    const rebalance = o.rebalance ? await part(readRebalance, previous.rebalance) : null;
    if (errors.length === 3 || (!o.rebalance && errors.length === 2)) throw errors[0];
    previous = { spot, scheduled, rebalance };
    const events = [...(spot ? [spot] : []), ...(rebalance ? [rebalance] : []), ...scheduled];
    const document = documents.build(events);
    // A completed event is listed Started for one read only: read again soon to drop it.
    const next = completed > 0 ? { nextInMs: 0 } : {};
    return errors.length === 0 ? { document, ...next } : { document, error: errors[0] };
  }

  const loop = createPollLoop({
    label: 'EC2 instance events',
    client,
    intervalMs: o.pollIntervalMs,
    maxBackoffMs: o.maxBackoffMs,
    read,
  });

  const lifecycle = pollLifecycle(client, loop, (context) => {
    clock = context.clock;
    logger = context.logger;
  });

  return {
    kind: 'ec2-imds',
    endpoint: base.origin,
    get imdsVersion() {
      return session.version;
    },
    ...noApproval(
      'EC2 has no call to start an instance event early; approval applies to Azure only',
    ),
    ...lifecycle,
    health() {
      return { ...lifecycle.health(), imds: session.health() };
    },
    async resolveResourceName() {
      return (await name.resolve()) ?? undefined;
    },
    async resolveVmId() {
      return (await vmId.resolve()) ?? undefined;
    },
  };
}
