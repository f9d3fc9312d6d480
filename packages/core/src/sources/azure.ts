import { parseScheduledEventsDocument } from '../document.js';
import { assertOption, FreezeguardError, withDefaults } from '../errors.js';
import type { MaintenanceDocument } from '../event.js';
import {
  assertCommonOptions,
  createMetadataClient,
  httpError,
  parseEndpoint,
} from './metadata-http.js';
import { createPollLoop } from './poll-loop.js';
import { pollLifecycle, resourceName } from './polled-source.js';
import type { MaintenanceSource } from './source.js';

export { MIN_REQUEST_SPACING_MS } from './metadata-http.js';

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
  /**
   * Longest wait between retries while IMDS fails. Default 5 s: a Preempt gives 30 s of
   * notice, so a longer wait could sleep through most of it after an IMDS outage.
   */
  readonly maxBackoffMs?: number;
  /** Larger bodies are rejected. Default 1 MiB. */
  readonly maxBodyBytes?: number;
}

const DEFAULTS = {
  apiVersion: '2020-07-01',
  pollIntervalMs: 1000,
  requestTimeoutMs: 10_000,
  firstRequestTimeoutMs: 120_000,
  maxBackoffMs: 5_000,
  maxBodyBytes: 1024 * 1024,
};

/**
 * The IMDS base URL a source uses when given none: `FREEZEGUARD_IMDS_ENDPOINT`, else the
 * link-local address (the same on Azure and EC2).
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
): MaintenanceSource & {
  readonly endpoint: string;
  readonly pollIntervalMs: number;
  readonly maxBackoffMs: number;
} {
  const o = withDefaults(DEFAULTS, options);
  const base = parseEndpoint(options.endpoint ?? defaultImdsEndpoint());
  assertCommonOptions(o);
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
  const vmIdUrl = new URL(
    '/metadata/instance/compute/vmId?api-version=2021-02-01&format=text',
    base,
  );
  // Metadata: true is mandatory; nothing that could look like a proxied request.
  const client = createMetadataClient({
    base,
    label: 'IMDS',
    headers: { Metadata: 'true' },
    requestTimeoutMs: o.requestTimeoutMs,
    firstRequestTimeoutMs: o.firstRequestTimeoutMs,
    maxBodyBytes: o.maxBodyBytes,
  });
  const vmId = resourceName(null, async () => {
    const res = await client.send(vmIdUrl);
    if (res.status !== 200) throw httpError('IMDS', res, 'compute/vmId');
    return res.body.toString('utf8').trim();
  });
  let etag: string | null = null;
  let lastDocument: MaintenanceDocument | null = null;

  async function readDocument(): Promise<MaintenanceDocument> {
    const res = await client.send(eventsUrl, {
      headers: etag && lastDocument ? { 'If-None-Match': etag } : {},
    });
    if (res.status === 304 && lastDocument) return lastDocument;
    if (res.status !== 200) throw httpError('IMDS', res);
    const document = parseScheduledEventsDocument(res.body);
    const tag = res.headers.etag;
    etag = typeof tag === 'string' ? tag : null;
    lastDocument = document;
    return document;
  }

  const loop = createPollLoop({
    label: 'IMDS Scheduled Events',
    client,
    intervalMs: o.pollIntervalMs,
    maxBackoffMs: o.maxBackoffMs,
    read: async () => ({ document: await readDocument() }),
  });

  return {
    kind: 'azure-imds',
    endpoint: base.origin,
    pollIntervalMs: o.pollIntervalMs,
    maxBackoffMs: o.maxBackoffMs,
    supportsApproval: true,
    ...pollLifecycle(client, loop),
    async resolveResourceName() {
      const res = await client.send(nameUrl);
      if (res.status !== 200) throw httpError('IMDS', res, 'compute/name');
      const name = res.body.toString('utf8').trim();
      return name === '' ? undefined : name;
    },
    async resolveVmId() {
      return (await vmId.resolve()) ?? undefined;
    },
    async approve(eventId) {
      // One attempt only: approving is an optimisation (the event starts at NotBefore
      // anyway) and a retry after a lost answer could approve twice.
      const res = await client.send(eventsUrl, {
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
  };
}
