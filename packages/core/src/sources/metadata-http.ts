import { Agent, request, errors as undiciErrors } from 'undici';
import { assertOption, FreezeguardError } from '../errors.js';
import type { MaintenanceDocument, MaintenanceEvent } from '../event.js';
import { type Clock, sleep, systemClock, systemTimers, type Timers } from '../time/clock.js';
import type { SourceContext } from './source.js';

/**
 * The machinery every metadata-server source shares (Azure IMDS, the GCE metadata server,
 * EC2 IMDS): a private HTTP client (the poll loop is poll-loop.ts). Kept in one place so the rules that
 * protect the VM's metadata endpoint (no proxy, ≤ 5 requests/s, timeouts, backoff, body
 * limit, one warning per failure streak) cannot drift apart between clouds.
 */

/** Metadata endpoints throttle around 5 requests/s; no two requests are ever closer than this. */
export const MIN_REQUEST_SPACING_MS = 200;

/** An answer of the metadata server. */
export interface MetadataResponse {
  readonly status: number;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** What one request may ask for beyond the URL. */
export interface MetadataRequest {
  readonly method?: 'GET' | 'PUT' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Overrides the client's timeout, e.g. for a hanging GET. */
  readonly timeoutMs?: number;
}

/** Options of {@link createMetadataClient}. */
export interface MetadataClientOptions {
  /** Base URL, already validated with {@link parseEndpoint}. */
  readonly base: URL;
  /** For messages: `IMDS`, `GCE metadata server`… */
  readonly label: string;
  /** Headers every request carries (`Metadata: true`, `Metadata-Flavor: Google`). */
  readonly headers: Readonly<Record<string, string>>;
  readonly requestTimeoutMs: number;
  /** Timeout until the first answer arrived (Azure IMDS may take 2 minutes for it). */
  readonly firstRequestTimeoutMs: number;
  readonly maxBodyBytes: number;
}

/** The HTTP half of a metadata source. */
export interface MetadataClient {
  /** Attaches the guard's clock, timers and time-reference callback. */
  bind(context: SourceContext): void;
  send(url: URL, init?: MetadataRequest): Promise<MetadataResponse>;
  /** Every request made so far. */
  readonly requests: number;
  /** Aborts requests in flight and releases the sockets. */
  close(): Promise<void>;
}

/**
 * Checks and normalises a metadata endpoint option: an absolute `http:` URL.
 *
 * @example
 * ```ts
 * const base = parseEndpoint('http://169.254.169.254');
 * ```
 */
export function parseEndpoint(endpoint: string): URL {
  let base: URL;
  try {
    base = new URL(endpoint);
  } catch {
    assertOption(false, 'endpoint', 'must be an absolute http URL', endpoint);
  }
  assertOption(
    base.protocol === 'http:',
    'endpoint',
    'must use http: (metadata servers have no TLS)',
    endpoint,
  );
  return base;
}

/**
 * A private HTTP client for a metadata server: its own undici `Agent` (never the global
 * dispatcher, never `HTTP_PROXY`/`HTTPS_PROXY`: a metadata server must not be proxied and
 * refuses `X-Forwarded-For`), one spacing gate for every request, timeouts, a body limit,
 * and the `Date` header of every good answer reported as a time reference.
 *
 * @example
 * ```ts
 * const client = createMetadataClient({ base, label: 'IMDS', headers: { Metadata: 'true' },
 *   requestTimeoutMs: 10_000, firstRequestTimeoutMs: 120_000, maxBodyBytes: 1 << 20 });
 * client.bind(context);
 * const res = await client.send(new URL('/metadata/scheduledevents?api-version=2020-07-01', base));
 * ```
 */
export function createMetadataClient(o: MetadataClientOptions): MetadataClient {
  const newAgent = () =>
    new Agent({ keepAliveTimeout: 10_000, connect: { timeout: o.requestTimeoutMs } });
  // Re-created when a stopped source is started again: a fleet hands polling from member
  // to member on one VM by stopping and starting their sources.
  let agent = newAgent();
  let clock: Clock = systemClock;
  let timers: Timers | null = null;
  let ctx: SourceContext | null = null;
  const inflight = new Set<AbortController>();
  let lastRequestAt = Number.NEGATIVE_INFINITY;
  let queue: Promise<void> = Promise.resolve();
  let firstDone = false;
  let requests = 0;
  let closed = false;

  // Serialises every request through one spacing gate: polls, retries, tokens and approvals alike.
  function gate(): Promise<void> {
    const next = queue.then(async () => {
      const wait = lastRequestAt + MIN_REQUEST_SPACING_MS - clock.monotonic();
      if (wait > 0) await sleep(timers ?? systemTimers, wait);
      lastRequestAt = clock.monotonic();
      requests++;
    });
    queue = next.catch(() => {});
    return next;
  }

  function tooLarge(size: number): FreezeguardError {
    return new FreezeguardError(
      'ERR_BODY_TOO_LARGE',
      `${o.label} body of ${size} bytes exceeds maxBodyBytes ${o.maxBodyBytes}`,
      { details: { size } },
    );
  }

  function classify(err: unknown, signal: AbortSignal): FreezeguardError {
    if (err instanceof FreezeguardError) return err;
    if (signal.aborted && signal.reason instanceof FreezeguardError) return signal.reason;
    if (
      err instanceof undiciErrors.HeadersTimeoutError ||
      err instanceof undiciErrors.BodyTimeoutError ||
      err instanceof undiciErrors.ConnectTimeoutError
    ) {
      return new FreezeguardError(
        'ERR_IMDS_TIMEOUT',
        `${o.label} timed out: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return new FreezeguardError(
      'ERR_IMDS_UNREACHABLE',
      `${o.label} unreachable at ${o.base.origin}: ${(err as Error)?.message ?? String(err)}`,
      { cause: err },
    );
  }

  function reportDate(headers: MetadataResponse['headers']): void {
    const date = headers.date;
    if (typeof date !== 'string' || !ctx?.onTimeReference) return;
    const referenceMs = Date.parse(date);
    if (!Number.isFinite(referenceMs)) return;
    try {
      ctx.onTimeReference({
        referenceMs,
        resolutionMs: 1000,
        wall: clock.now(),
        monotonic: clock.monotonic(),
        origin: 'imds-date',
      });
    } catch {
      // the guard's handler must not break reading
    }
  }

  return {
    bind(context) {
      ctx = context;
      clock = context.clock;
      timers = context.timers;
      if (closed) {
        agent = newAgent();
        closed = false;
      }
    },
    get requests() {
      return requests;
    },
    async send(url, init = {}) {
      // A stopped source reads nothing more, but may still have to approve: a fleet or
      // VM-local member that polled before (the lease went to another process) approves
      // through its own source. That POST gets a connection of its own, closed after it.
      const oneShot = closed && init.method === 'POST' ? newAgent() : null;
      if (closed && !oneShot) throw new FreezeguardError('ERR_STOPPED', 'source stopped');
      await gate();
      const controller = new AbortController();
      inflight.add(controller);
      const timeoutMs =
        init.timeoutMs ??
        (firstDone ? o.requestTimeoutMs : Math.max(o.requestTimeoutMs, o.firstRequestTimeoutMs));
      // A source never started (a fleet follower) still approves: real timers then.
      const requestTimers = timers ?? systemTimers;
      const timer = requestTimers.setTimeout(
        () =>
          controller.abort(
            new FreezeguardError(
              'ERR_IMDS_TIMEOUT',
              `${o.label} did not answer within ${timeoutMs} ms`,
            ),
          ),
        timeoutMs,
      );
      try {
        const res = await request(url, {
          method: init.method ?? 'GET',
          dispatcher: oneShot ?? agent,
          signal: controller.signal,
          // undici's own timeouts would fire before a long hanging GET ends; ours governs.
          headersTimeout: timeoutMs + 1000,
          bodyTimeout: timeoutMs + 1000,
          headers: { ...o.headers, ...(init.headers ?? {}) },
          ...(init.body === undefined ? {} : { body: init.body }),
        });
        const declared = Number(res.headers['content-length'] ?? '0');
        if (declared > o.maxBodyBytes) {
          res.body.destroy();
          throw tooLarge(declared);
        }
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length;
          if (size > o.maxBodyBytes) {
            res.body.destroy();
            throw tooLarge(size);
          }
          chunks.push(chunk as Buffer);
        }
        firstDone = true;
        if (res.statusCode < 400) reportDate(res.headers);
        return { status: res.statusCode, body: Buffer.concat(chunks), headers: res.headers };
      } catch (err) {
        throw classify(err, controller.signal);
      } finally {
        requestTimers.clearTimeout(timer);
        inflight.delete(controller);
        if (oneShot) await oneShot.close().catch(() => {});
      }
    },
    async close() {
      closed = true;
      for (const c of inflight) c.abort(new FreezeguardError('ERR_STOPPED', 'source stopped'));
      await agent.close().catch(() => {});
    },
  };
}

/**
 * Checks the options every metadata source shares.
 *
 * @example
 * ```ts
 * assertCommonOptions({ pollIntervalMs: 1000, requestTimeoutMs: 10_000, maxBackoffMs: 5000, maxBodyBytes: 1 << 20 });
 * ```
 */
export function assertCommonOptions(o: {
  readonly pollIntervalMs: number;
  readonly requestTimeoutMs: number;
  readonly maxBackoffMs: number;
  readonly maxBodyBytes: number;
}): void {
  assertOption(
    Number.isFinite(o.pollIntervalMs) && o.pollIntervalMs >= MIN_REQUEST_SPACING_MS,
    'pollIntervalMs',
    `must be ≥ ${MIN_REQUEST_SPACING_MS} (metadata servers allow about 5 requests/s)`,
    o.pollIntervalMs,
  );
  assertOption(o.requestTimeoutMs > 0, 'requestTimeoutMs', 'must be > 0', o.requestTimeoutMs);
  assertOption(
    o.maxBackoffMs >= o.pollIntervalMs,
    'maxBackoffMs',
    'must be ≥ pollIntervalMs',
    o.maxBackoffMs,
  );
  assertOption(o.maxBodyBytes > 0, 'maxBodyBytes', 'must be > 0', o.maxBodyBytes);
}

/** HTTP statuses a metadata read may succeed after. */
export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([404, 410, 429, 500, 502, 503, 504]);

/**
 * The error for an unexpected HTTP status.
 *
 * @example
 * ```ts
 * if (res.status !== 200) throw httpError('IMDS', res);
 * ```
 */
export function httpError(label: string, res: MetadataResponse, what = ''): FreezeguardError {
  return new FreezeguardError(
    'ERR_IMDS_HTTP',
    `${label}${what ? ` ${what}` : ''} answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`,
    { details: { status: res.status, retryable: RETRYABLE_STATUS.has(res.status) } },
  );
}

/**
 * Builds documents for sources that translate another cloud's metadata: `incarnation`
 * goes up by one whenever the events' content changes, as Azure's does.
 *
 * @example
 * ```ts
 * const documents = documentBuilder();
 * documents.build([]); // { incarnation: 1, events: [] }
 * ```
 */
export function documentBuilder(): {
  build(events: readonly MaintenanceEvent[]): MaintenanceDocument;
} {
  let incarnation = 0;
  let signature: string | null = null;
  return {
    build(events) {
      const next = JSON.stringify(events);
      if (next !== signature) {
        signature = next;
        incarnation++;
      }
      return { incarnation, events: [...events] };
    },
  };
}
