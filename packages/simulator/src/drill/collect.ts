import { request as httpRequest } from 'node:http';
import type { Simulator } from '../clouds/azure/types.js';
import { delay, httpStatus } from '../process.js';
import type { Probe } from './types.js';

/*
 * What a drill collects while it runs: health probes as a load balancer sends them, the
 * phases only the emulator sees (announced, approved), and the pause the app measured.
 */

/**
 * Probes `url` every `intervalMs` on a new connection each time, as a load balancer's
 * health check does, marking each change of health on the timeline.
 *
 * @example
 * ```ts
 * const prober = startProber(healthUrl, 250, now, mark);
 * // … later
 * await prober.stop();
 * prober.probes; // every answer, in order
 * ```
 */
export function startProber(
  url: string,
  intervalMs: number,
  now: () => number,
  mark: (what: string) => void,
): { readonly probes: readonly Probe[]; stop(): Promise<void> } {
  const probes: Probe[] = [];
  let probing = true;
  const loop = (async () => {
    let last: boolean | null = null;
    while (probing) {
      const started = now();
      const status = await httpStatus(url, { timeoutMs: Math.max(intervalMs * 4, 1000) });
      const ok = status === 200;
      probes.push({ t: started, ok, status, doneAt: now() });
      if (ok !== last) mark(`health → ${status}`);
      last = ok;
      const wait = intervalMs - (now() - started);
      if (wait > 0) await delay(wait);
    }
  })();
  return {
    probes,
    async stop() {
      probing = false;
      await loop;
    },
  };
}

/**
 * Notes when the emulator's document first listed an event and when the app approved
 * one: the two phases the prober cannot see from outside.
 *
 * @example
 * ```ts
 * const phases = watchPhases(sim, () => performance.now() - t0);
 * // … after the drill
 * const { announcedAt, readyAt } = phases.stop();
 * ```
 */
export function watchPhases(
  sim: {
    on(event: 'change' | 'approved', listener: () => void): unknown;
    off(event: string, listener: () => void): unknown;
    readonly document?: Simulator['document'];
  },
  now: () => number,
): { stop(): { announcedAt: number | null; readyAt: number | null } } {
  let announcedAt: number | null = null;
  let readyAt: number | null = null;
  // GCE and EC2 emulators have no Azure document: their first change is the announcement.
  const onChange = () => {
    if (announcedAt === null && (!sim.document || sim.document().Events.length > 0))
      announcedAt = now();
  };
  const onApproved = () => {
    readyAt ??= now();
  };
  sim.on('change', onChange);
  sim.on('approved', onApproved);
  return {
    stop() {
      sim.off('change', onChange);
      sim.off('approved', onApproved);
      return { announcedAt, readyAt };
    },
  };
}

/**
 * Asks the app's health route once for its guard's last measured pause. Apps that serve
 * `exposeStatus: true` answer `{ guard: { lastPause: { pausedMs } } }`; others give null.
 *
 * @example
 * ```ts
 * const ms = await measuredPause('http://127.0.0.1:3000/health/ready');
 * ```
 */
export function measuredPause(url: string, timeoutMs = 2000): Promise<number | null> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        // A status document is a few kB; anything far bigger is not one.
        if (body.length < 1_000_000) body += chunk;
      });
      res.on('end', () => {
        try {
          const ms = JSON.parse(body)?.guard?.lastPause?.pausedMs;
          resolve(typeof ms === 'number' && Number.isFinite(ms) ? ms : null);
        } catch {
          resolve(null);
        }
      });
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}
