import { FreezeguardError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Clock } from '../time/clock.js';
import { httpError, type MetadataClient, type MetadataResponse } from './metadata-http.js';

/*
 * The IMDSv2 session of the EC2 source: the token PUT, its lifetime, and the fallback to
 * IMDSv1 GETs the AWS SDKs make when the PUT cannot be answered. The classic case is a
 * container behind an extra network hop with the instance's hop limit at 1 (the default
 * of many AMIs): the PUT's answer is dropped on the way back, the PUT times out, and a
 * source that insists on a token never sees a Spot notice that IMDSv1 would serve.
 */

/** The header IMDS reads the wanted lifetime from and writes the lifetime left into. */
export const EC2_TOKEN_TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
/** The header a GET presents its token in. */
export const EC2_TOKEN_HEADER = 'x-aws-ec2-metadata-token';

/** How the EC2 source talks to IMDS right now; part of its `health()`. */
export interface ImdsSessionHealth {
  /** 2 with a session token, 1 while reading with IMDSv1 GETs, null before the first PUT. */
  readonly version: 1 | 2 | null;
  /** Why IMDSv1 is in use (`the token PUT timed out`…), or null on IMDSv2. */
  readonly fallbackReason: string | null;
  /** Wall-clock ms when the fallback began, or null. */
  readonly fallbackSince: number | null;
}

/** Options of {@link createImdsSession}. */
export interface ImdsSessionOptions {
  readonly client: MetadataClient;
  readonly tokenUrl: URL;
  readonly ttlSeconds: number;
  /** Timeout of one token PUT; a PUT that takes longer falls back to IMDSv1. */
  readonly timeoutMs: number;
  /** While on IMDSv1, a new token PUT is tried this often (in the background). */
  readonly retryMs: number;
  readonly clock: () => Clock;
  readonly logger: () => Logger;
}

/** The IMDSv2 session of one EC2 source. */
export interface ImdsSession {
  /** The token to send, or null to send an IMDSv1 GET. Rejects only when IMDS refuses the PUT outright. */
  token(): Promise<string | null>;
  /** Forgets the token after a 401: the next {@link ImdsSession.token} starts a new session in the foreground. */
  invalidate(): void;
  /** Takes the lifetime left that IMDS reports on an answer to a GET with a token. */
  observe(res: MetadataResponse): void;
  readonly version: 1 | 2 | null;
  health(): ImdsSessionHealth;
}

/**
 * What makes the AWS SDKs give up on the token and read with IMDSv1: the PUT timing out
 * (an answer lost beyond the hop limit), IMDS unreachable for it, or 403/404/405 (a
 * forwarder, an IMDS without the token call). Anything else (400, 5xx) is an error.
 */
function fallbackReason(err: unknown, res: MetadataResponse | null): string | null {
  if (res) {
    if (res.status === 403 || res.status === 404 || res.status === 405)
      return `the token PUT answered ${res.status}`;
    return null;
  }
  if (err instanceof FreezeguardError) {
    if (err.code === 'ERR_IMDS_TIMEOUT')
      return 'the token PUT timed out (an IMDSv2 hop limit of 1 seen from a container?)';
    if (err.code === 'ERR_IMDS_UNREACHABLE') return 'the token PUT could not reach IMDS';
  }
  return null;
}

/**
 * The IMDSv2 session: one PUT for a token, renewed before it expires (the lifetime IMDS
 * reports wins over the one asked for), IMDSv1 GETs while the PUT cannot be answered,
 * and a new PUT tried in the background every `retryMs` meanwhile, so reads never wait
 * on a PUT that is known to hang.
 *
 * @example
 * ```ts
 * const session = createImdsSession({ client, tokenUrl, ttlSeconds: 21_600, timeoutMs: 2_000,
 *   retryMs: 300_000, clock: () => clock, logger: () => logger });
 * const t = await session.token(); // null: send the GET without a token
 * ```
 */
export function createImdsSession(o: ImdsSessionOptions): ImdsSession {
  let token: { value: string; expiresAt: number } | null = null;
  let version: 1 | 2 | null = null;
  let fallback: { reason: string; since: number } | null = null;
  let retryAt = 0;
  let inflight: Promise<string | null> | null = null;

  async function put(): Promise<string | null> {
    const clock = o.clock();
    const sentAt = clock.monotonic();
    let res: MetadataResponse | null = null;
    try {
      res = await o.client.send(o.tokenUrl, {
        method: 'PUT',
        headers: { [EC2_TOKEN_TTL_HEADER]: String(o.ttlSeconds) },
        timeoutMs: o.timeoutMs,
      });
    } catch (err) {
      const reason = fallbackReason(err, null);
      if (reason === null) throw err;
      return fallBack(reason);
    }
    if (res.status === 200) {
      const value = res.body.toString('utf8').trim();
      if (value === '')
        throw new FreezeguardError('ERR_IMDS_HTTP', 'EC2 IMDS returned an empty token');
      const ttl = ttlOf(res) ?? o.ttlSeconds;
      token = { value, expiresAt: sentAt + ttl * 1000 };
      if (fallback) {
        o.logger().info(
          { after: fallback.reason },
          'freezeguard: EC2 IMDSv2 session token acquired; IMDSv1 fallback over',
        );
      } else if (version !== 2) {
        o.logger().debug({}, 'freezeguard: EC2 IMDSv2 session token acquired');
      }
      fallback = null;
      version = 2;
      return value;
    }
    const reason = fallbackReason(null, res);
    if (reason === null) throw httpError('EC2 IMDS', res, 'PUT /latest/api/token');
    return fallBack(reason);
  }

  function fallBack(reason: string): null {
    const clock = o.clock();
    if (!fallback) {
      // Once per fallback: the retries that fail the same way stay quiet.
      o.logger().warn(
        { reason, retryInMs: o.retryMs },
        'freezeguard: EC2 IMDSv2 token unavailable; reading IMDS with IMDSv1 GETs as the AWS SDKs do, token retried later',
      );
      fallback = { reason, since: clock.now() };
    }
    version = 1;
    token = null;
    retryAt = clock.monotonic() + o.retryMs;
    return null;
  }

  function ttlOf(res: MetadataResponse): number | null {
    const ttl = Number(res.headers[EC2_TOKEN_TTL_HEADER]);
    return Number.isFinite(ttl) && ttl > 0 ? ttl : null;
  }

  function start(): Promise<string | null> {
    inflight ??= put().finally(() => {
      inflight = null;
    });
    return inflight;
  }

  return {
    get version() {
      return version;
    },
    token() {
      const mono = o.clock().monotonic();
      if (version === 1) {
        // Reads go on with IMDSv1 while a new PUT is tried on the side.
        if (mono >= retryAt && inflight === null) {
          retryAt = mono + o.retryMs;
          start().catch((err: unknown) => {
            o.logger().debug(
              { err: (err as Error)?.message ?? String(err) },
              'freezeguard: EC2 IMDSv2 token retry failed; staying on IMDSv1',
            );
          });
        }
        return Promise.resolve(null);
      }
      // Refresh with a tenth of the lifetime (at most a minute) left, never at the edge.
      const margin = Math.min(60_000, (o.ttlSeconds * 1000) / 10);
      if (token && mono < token.expiresAt - margin) return Promise.resolve(token.value);
      return start();
    },
    invalidate() {
      token = null;
      // IMDSv1 refused too (401 without a token): ask for a token again, in the foreground.
      if (version === 1) version = null;
    },
    observe(res) {
      if (!token || res.status !== 200) return;
      const ttl = ttlOf(res);
      // IMDS reports the lifetime left; a token revoked early or shortened expires sooner.
      if (ttl !== null)
        token.expiresAt = Math.min(token.expiresAt, o.clock().monotonic() + ttl * 1000);
    },
    health() {
      return {
        version,
        fallbackReason: fallback?.reason ?? null,
        fallbackSince: fallback?.since ?? null,
      };
    },
  };
}
