import { Agent, request as httpRequest } from 'node:http';

/** Outcomes of the requests sent in one 100 ms slot (by send time). */
export interface LoadBucket {
  /** Start of the slot, ms since the drill began. */
  readonly t: number;
  /** Answered below 500 within {@link LATE_MS}. */
  readonly ok: number;
  /** Answered below 500, but only after {@link LATE_MS} or more (held up by the freeze). */
  readonly late: number;
  /** Answered 5xx (a draining app that rejects, say). */
  readonly rejected: number;
  /** No answer: connection error or timeout (a frozen app). */
  readonly failed: number;
}

/** Options of {@link startLoad}. */
export interface LoadOptions {
  readonly url: string;
  /** Requests per second, spread evenly. */
  readonly rps: number;
  /** ms since the drill began. */
  readonly now: () => number;
  /** A request without an answer this long counts as failed. Default 1000. */
  readonly timeoutMs?: number;
}

/** An answer this slow counts as `late`, ms. */
export const LATE_MS = 500;
/** Slot width of {@link LoadBucket}, ms. */
export const LOAD_BUCKET_MS = 100;
// A bound on what one drill can send, whatever rps and duration were asked for.
const MAX_REQUESTS = 200_000;

/**
 * Sends a steady load of GETs at the app while the drill runs, over keep-alive
 * connections as a client behind a load balancer would, and counts the outcomes per
 * 100 ms slot for the report.
 *
 * @example
 * ```ts
 * const load = startLoad({ url: 'http://127.0.0.1:3000/', rps: 50, now: () => performance.now() });
 * // … later
 * const buckets = await load.stop();
 * ```
 */
export function startLoad(options: LoadOptions): { stop(): Promise<LoadBucket[]> } {
  const { url, rps, now } = options;
  if (!(rps > 0 && rps <= 1000))
    throw new TypeError(`Invalid option \`load\`: rps must be in (0, 1000] (got ${rps})`);
  const timeoutMs = options.timeoutMs ?? 1000;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const slots = new Map<number, { ok: number; late: number; rejected: number; failed: number }>();
  const inFlight = new Set<Promise<void>>();
  let sent = 0;
  const count = (t: number, outcome: 'ok' | 'late' | 'rejected' | 'failed') => {
    const key = Math.floor(t / LOAD_BUCKET_MS) * LOAD_BUCKET_MS;
    let slot = slots.get(key);
    if (!slot) {
      slot = { ok: 0, late: 0, rejected: 0, failed: 0 };
      slots.set(key, slot);
    }
    slot[outcome]++;
  };
  const one = () => {
    const t = now();
    const p = new Promise<void>((resolve) => {
      const req = httpRequest(url, { agent, timeout: timeoutMs }, (res) => {
        res.resume();
        res.on('end', () => {
          const late = now() - t >= LATE_MS;
          count(t, (res.statusCode ?? 0) >= 500 ? 'rejected' : late ? 'late' : 'ok');
          resolve();
        });
        res.on('error', () => {
          count(t, 'failed');
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        count(t, 'failed');
        resolve();
      });
      req.end();
    }).finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const period = 1000 / rps;
  const started = now();
  // Catch up after a late timer instead of drifting, so the rate is the one asked for.
  const timer = setInterval(
    () => {
      const due = Math.floor((now() - started) / period) + 1;
      while (sent < due && sent < MAX_REQUESTS) {
        sent++;
        one();
      }
    },
    Math.max(5, Math.min(period, 50)),
  );
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all([...inFlight]);
      agent.destroy();
      return [...slots.entries()].sort(([a], [b]) => a - b).map(([t, s]) => ({ t, ...s }));
    },
  };
}
