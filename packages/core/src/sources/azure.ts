import { Agent, request, errors as undiciErrors } from 'undici';
import { parseScheduledEventsDocument, type ScheduledEventsDocument } from '../document.js';
import { assertOption, FreezeguardError, withDefaults } from '../errors.js';
import { type Logger, silentLogger } from '../logger.js';
import { type Clock, sleep, systemClock, type Timers } from '../time/clock.js';
import type { MaintenanceSource, SourceContext, SourceHealth } from './source.js';

/** Options of {@link azureScheduledEvents}. */
export interface AzureScheduledEventsOptions {
  /** IMDS base URL. Default: `FREEZEGUARD_IMDS_ENDPOINT`, else `http://169.254.169.254`. */
  readonly endpoint?: string;
  /** Scheduled Events api-version. Default `2020-07-01`. */
  readonly apiVersion?: string;
  /** Delay between polls. Azure recommends 1 s; at least 200 ms (IMDS allows ~5 req/s). */
  readonly pollIntervalMs?: number;
  /** Per-request timeout. Default 10 s. */
  readonly requestTimeoutMs?: number;
  /** Timeout of the very first request: IMDS may take up to 2 minutes to answer it. */
  readonly firstRequestTimeoutMs?: number;
  /** Longest wait between retries while IMDS fails. Default 30 s. */
  readonly maxBackoffMs?: number;
  /** Larger bodies are rejected. Default 1 MiB. */
  readonly maxBodyBytes?: number;
}

const DEFAULTS = {
  apiVersion: '2020-07-01',
  pollIntervalMs: 1000,
  requestTimeoutMs: 10_000,
  firstRequestTimeoutMs: 120_000,
  maxBackoffMs: 30_000,
  maxBodyBytes: 1024 * 1024,
};

/** IMDS allows about 5 requests/s per VM; we keep every request at least this far apart. */
export const MIN_REQUEST_SPACING_MS = 200;

const RETRYABLE_STATUS = new Set([404, 410, 429, 500, 502, 503, 504]);

/**
 * The IMDS base URL a source uses when given none: `FREEZEGUARD_IMDS_ENDPOINT`, else the
 * link-local Azure address.
 *
 * @example
 * ```ts
 * defaultImdsEndpoint(); // 'http://169.254.169.254'
 * ```
 */
export function defaultImdsEndpoint(): string {
  return process.env.FREEZEGUARD_IMDS_ENDPOINT || 'http://169.254.169.254';
}

/**
 * Azure Instance Metadata Service Scheduled Events as a {@link MaintenanceSource}.
 *
 * Requests go through a private undici `Agent`: never the global dispatcher and never
 * `HTTP_PROXY`/`HTTPS_PROXY` (IMDS must not be proxied), always `Metadata: true`, never
 * `X-Forwarded-For`. Failures are retried with exponential backoff and jitter, and no two
 * requests are ever closer than 200 ms.
 *
 * @example
 * ```ts
 * const guard = createGuard({
 *   source: azureScheduledEvents({ endpoint: 'http://127.0.0.1:8080', pollIntervalMs: 1000 }),
 * });
 * ```
 */
export function azureScheduledEvents(
  options: AzureScheduledEventsOptions = {},
): MaintenanceSource & { readonly endpoint: string; readonly pollIntervalMs: number } {
  const o = {
    ...withDefaults(DEFAULTS, options),
    endpoint: options.endpoint ?? defaultImdsEndpoint(),
  };
  let base: URL;
  try {
    base = new URL(o.endpoint);
  } catch {
    assertOption(false, 'endpoint', 'must be an absolute http URL', o.endpoint);
  }
  assertOption(
    base.protocol === 'http:',
    'endpoint',
    'must use http: (IMDS has no TLS)',
    o.endpoint,
  );
  assertOption(
    Number.isFinite(o.pollIntervalMs) && o.pollIntervalMs >= MIN_REQUEST_SPACING_MS,
    'pollIntervalMs',
    `must be ≥ ${MIN_REQUEST_SPACING_MS} (IMDS allows about 5 requests/s)`,
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
  assertOption(
    typeof o.apiVersion === 'string' && o.apiVersion.length > 0,
    'apiVersion',
    'must be a non-empty string',
    o.apiVersion,
  );

  const eventsUrl = new URL(
    `/metadata/scheduledevents?api-version=${encodeURIComponent(o.apiVersion)}`,
    base,
  );
  const nameUrl = new URL(
    '/metadata/instance/compute/name?api-version=2021-02-01&format=text',
    base,
  );
  const agent = new Agent({ keepAliveTimeout: 10_000, connect: { timeout: o.requestTimeoutMs } });

  let ctx: SourceContext | null = null;
  let logger: Logger = silentLogger;
  let clock: Clock = systemClock;
  let timers: Timers | null = null;
  let pollTimer: unknown = null;
  let running = false;
  const inflight = new Set<AbortController>();
  let lastRequestAt = Number.NEGATIVE_INFINITY;
  let queue: Promise<void> = Promise.resolve();
  let firstDone = false;
  let etag: string | null = null;
  let lastDocument: ScheduledEventsDocument | null = null;
  const health = {
    lastSuccessAt: null as number | null,
    lastErrorAt: null as number | null,
    lastError: null as { code: string; message: string } | null,
    consecutiveFailures: 0,
    requests: 0,
  };

  // Serialises every request through one spacing gate, polls, retries and approvals alike.
  function gate(): Promise<void> {
    const next = queue.then(async () => {
      const wait = lastRequestAt + MIN_REQUEST_SPACING_MS - clock.monotonic();
      if (wait > 0 && timers) await sleep(timers, wait);
      lastRequestAt = clock.monotonic();
      health.requests++;
    });
    queue = next.catch(() => {});
    return next;
  }

  async function send(
    url: URL,
    init: { method: 'GET' | 'POST'; body?: string; headers?: Record<string, string> },
  ): Promise<{
    status: number;
    body: Buffer;
    headers: Record<string, string | string[] | undefined>;
  }> {
    await gate();
    const controller = new AbortController();
    inflight.add(controller);
    const timeoutMs = firstDone
      ? o.requestTimeoutMs
      : Math.max(o.requestTimeoutMs, o.firstRequestTimeoutMs);
    const timer = timers?.setTimeout(
      () =>
        controller.abort(
          new FreezeguardError('ERR_IMDS_TIMEOUT', `IMDS did not answer within ${timeoutMs} ms`),
        ),
      timeoutMs,
    );
    try {
      const res = await request(url, {
        method: init.method,
        dispatcher: agent,
        signal: controller.signal,
        // Metadata: true is mandatory; nothing that could look like a proxied request.
        headers: { Metadata: 'true', ...(init.headers ?? {}) },
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
      return { status: res.statusCode, body: Buffer.concat(chunks), headers: res.headers };
    } catch (err) {
      throw classify(err, controller.signal);
    } finally {
      if (timer !== undefined) timers?.clearTimeout(timer);
      inflight.delete(controller);
    }
  }

  function tooLarge(size: number): FreezeguardError {
    return new FreezeguardError(
      'ERR_BODY_TOO_LARGE',
      `IMDS body of ${size} bytes exceeds maxBodyBytes ${o.maxBodyBytes}`,
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
      return new FreezeguardError('ERR_IMDS_TIMEOUT', `IMDS timed out: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return new FreezeguardError(
      'ERR_IMDS_UNREACHABLE',
      `IMDS unreachable at ${base.origin}: ${(err as Error)?.message ?? String(err)}`,
      { cause: err },
    );
  }

  async function readDocument(): Promise<ScheduledEventsDocument> {
    const res = await send(eventsUrl, {
      method: 'GET',
      headers: etag && lastDocument ? { 'If-None-Match': etag } : {},
    });
    if (res.status === 304 && lastDocument) return lastDocument;
    if (res.status !== 200) {
      throw new FreezeguardError(
        'ERR_IMDS_HTTP',
        `IMDS answered ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`,
        { details: { status: res.status, retryable: RETRYABLE_STATUS.has(res.status) } },
      );
    }
    const document = parseScheduledEventsDocument(res.body);
    const tag = res.headers.etag;
    etag = typeof tag === 'string' ? tag : null;
    lastDocument = document;
    return document;
  }

  function backoff(streak: number, error: FreezeguardError): number {
    const exp = Math.min(o.maxBackoffMs, o.pollIntervalMs * 2 ** Math.min(streak - 1, 16));
    // Equal jitter: keeps a floor of half the step so a fleet does not retry in lock-step.
    let delay = exp / 2 + Math.random() * (exp / 2);
    if (error.details.status === 429) delay = Math.max(delay, 1000);
    return Math.max(o.pollIntervalMs, Math.min(o.maxBackoffMs, delay));
  }

  async function poll(): Promise<void> {
    pollTimer = null;
    if (!running || !ctx || !timers) return;
    let delay = o.pollIntervalMs;
    try {
      const document = await readDocument();
      if (health.consecutiveFailures > 0) {
        logger.info(
          { failures: health.consecutiveFailures },
          'freezeguard: IMDS Scheduled Events reachable again',
        );
      }
      health.consecutiveFailures = 0;
      health.lastSuccessAt = clock.now();
      if (running) ctx.onDocument(document);
    } catch (err) {
      const error =
        err instanceof FreezeguardError ? err : classify(err, new AbortController().signal);
      if (!running) return;
      health.consecutiveFailures++;
      health.lastErrorAt = clock.now();
      health.lastError = { code: error.code, message: error.message };
      // One warning per failure streak; the rest at debug so a long outage does not flood logs.
      if (health.consecutiveFailures === 1) {
        logger.warn(
          { err: error },
          'freezeguard: reading IMDS Scheduled Events failed, retrying with backoff',
        );
      } else {
        logger.debug(
          { err: error, streak: health.consecutiveFailures },
          'freezeguard: IMDS still failing',
        );
      }
      try {
        ctx.onError(error, health.consecutiveFailures);
      } catch {
        // the guard's own handler must not stop polling
      }
      delay = backoff(health.consecutiveFailures, error);
    }
    if (running) pollTimer = timers.setTimeout(() => void poll(), delay);
  }

  return {
    kind: 'azure-imds',
    endpoint: base.origin,
    pollIntervalMs: o.pollIntervalMs,
    start(context) {
      if (running) return;
      ctx = context;
      logger = context.logger;
      clock = context.clock;
      timers = context.timers;
      running = true;
      pollTimer = timers.setTimeout(() => void poll(), 0);
    },
    async stop() {
      running = false;
      if (pollTimer !== null) timers?.clearTimeout(pollTimer);
      pollTimer = null;
      for (const c of inflight) c.abort(new FreezeguardError('ERR_STOPPED', 'source stopped'));
      await agent.close().catch(() => {});
    },
    async resolveResourceName() {
      const res = await send(nameUrl, { method: 'GET' });
      if (res.status !== 200) {
        throw new FreezeguardError('ERR_IMDS_HTTP', `IMDS compute/name answered ${res.status}`, {
          details: { status: res.status },
        });
      }
      const name = res.body.toString('utf8').trim();
      return name === '' ? undefined : name;
    },
    async approve(eventId) {
      // One attempt only: approving is an optimisation (the event starts at NotBefore
      // anyway) and a retry after a lost answer could approve twice.
      const res = await send(eventsUrl, {
        method: 'POST',
        body: JSON.stringify({ StartRequests: [{ EventId: eventId }] }),
        headers: { 'Content-Type': 'application/json' },
      });
      if (res.status !== 200) {
        throw new FreezeguardError(
          'ERR_IMDS_HTTP',
          `IMDS refused StartRequests with ${res.status}`,
          {
            details: { status: res.status },
          },
        );
      }
    },
    health(): SourceHealth {
      return { ...health, lastError: health.lastError ? { ...health.lastError } : null };
    },
  };
}
