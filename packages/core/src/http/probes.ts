import { errorSummary } from '../errors.js';
import type { Guard } from '../guard/guard.js';
import type { Logger } from '../logger.js';
import { withTimeout } from '../time/clock.js';
import type { ProbeResponse, ResolvedHttpOptions } from './options.js';

/** The answers of `{path}/ready` and `{path}/live`, and the 503 of `rejectWhileDraining`. */
export interface Probes {
  probe(kind: 'ready' | 'live'): Promise<ProbeResponse>;
  /** The 503 to answer instead of a route while draining (whatever `rejectWhileDraining` says). */
  draining(): ProbeResponse;
}

type CheckResult = { ok: boolean; error?: string };

/** Builds the probe answers of one HTTP guard; readiness checks race the shared timeout. */
export function createProbes(guard: Guard, o: ResolvedHttpOptions, logger: () => Logger): Probes {
  const retryAfter = () => {
    const at = guard.expectedResumeAt();
    const seconds = at === null ? 1 : Math.ceil((at - guard.clock.now()) / 1000);
    return String(Math.max(1, seconds));
  };

  async function runChecks(): Promise<Record<string, CheckResult>> {
    const results: Record<string, CheckResult> = {};
    await Promise.all(
      o.checks.map(async ([name, fn]) => {
        try {
          const value = await withTimeout(
            guard.timers,
            Promise.resolve().then(fn),
            o.checkTimeoutMs,
            `check ${name}`,
          );
          results[name] = value === false ? { ok: false, error: 'returned false' } : { ok: true };
        } catch (err) {
          results[name] = { ok: false, error: errorSummary(err).message };
        }
      }),
    );
    return results;
  }

  function answer(
    ok: boolean,
    word: string,
    extra: Record<string, string>,
    json: () => unknown,
  ): ProbeResponse {
    const headers = { 'Cache-Control': 'no-store', ...extra };
    return o.exposeStatus
      ? {
          status: ok ? 200 : 503,
          headers: { ...headers, 'Content-Type': 'application/json; charset=utf-8' },
          body: JSON.stringify(json()),
        }
      : {
          status: ok ? 200 : 503,
          headers: { ...headers, 'Content-Type': 'text/plain; charset=utf-8' },
          body: word,
        };
  }

  return {
    draining: () => ({
      status: 503,
      headers: {
        'Retry-After': retryAfter(),
        'Cache-Control': 'no-store',
        'Content-Type': 'text/plain; charset=utf-8',
      },
      body: 'draining',
    }),
    async probe(kind) {
      if (kind === 'live') {
        const ok = guard.isLive();
        return answer(ok, ok ? 'ok' : 'shutting-down', {}, () => ({
          status: ok ? 'ok' : 'shutting-down',
          guard: guard.status(),
        }));
      }
      if (!guard.isReady()) {
        return answer(false, 'draining', { 'Retry-After': retryAfter() }, () => ({
          status: 'draining',
          guard: guard.status(),
        }));
      }
      const results = o.checks.length > 0 ? await runChecks() : {};
      const failed = Object.entries(results).filter(([, r]) => !r.ok);
      if (failed.length > 0) {
        logger().warn(
          { checks: Object.fromEntries(failed) },
          'freezeguard: readiness check failed',
        );
      }
      const ok = failed.length === 0;
      return answer(ok, ok ? 'ok' : 'unhealthy', {}, () => ({
        status: ok ? 'ok' : 'unhealthy',
        checks: results,
        guard: guard.status(),
      }));
    },
  };
}
