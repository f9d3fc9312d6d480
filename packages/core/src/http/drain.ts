import type { IncomingMessage } from 'node:http';
import { DrainMonitor, type DrainVerdict } from '../drain/confirm.js';
import type { DrainState, Guard, PrepareContext } from '../guard/guard.js';
import type { Logger } from '../logger.js';
import { sleep } from '../time/clock.js';
import type { InFlight } from './in-flight.js';

/** How often the traffic phase looks whether the balancers let go. */
const LOOK_MS = 100;

/**
 * The balancers' side of a drain, as one HTTP adapter sees it: who probes readiness and
 * what it was answered, the ordinary requests still arriving, the requests in flight.
 */
export interface DrainWatch {
  /**
   * Who sent a readiness request: read when it arrives, since a prober that gave up
   * waiting has closed its connection (and Node forgets its address) by the time a slow
   * answer goes out. Null when the address is unknown.
   */
  proberOf(req: IncomingMessage): string | null;
  /** A readiness answer went out to `prober`. */
  probed(prober: string | null, healthy: boolean): void;
  /** An ordinary request arrived while draining. */
  arrived(): void;
  /** Readiness turned (`false`: draining) . */
  readiness(ready: boolean): void;
  /** What the guard's approval waits for. */
  state(): DrainState;
  /** The traffic participant's prepare. */
  prepare(ctx: PrepareContext): Promise<void>;
}

/** Who a prober is: its address, its `User-Agent` (a kubelet, an ALB) and the path it asks. */
function proberOf(req: IncomingMessage): string | null {
  const address = req.socket?.remoteAddress;
  if (address === undefined) return null;
  const ua = req.headers['user-agent'];
  return `${address} ${ua === undefined ? '-' : ua} ${(req.url ?? '').split('?')[0]}`;
}

/**
 * Confirms the drain instead of assuming it: the `traffic` phase ends once every prober
 * seen recently received the balancer's `unhealthyThreshold` failing answers, nothing is
 * in flight and the traffic stopped ({@link DrainMonitor}), or at `drainUntil` — the cap,
 * reached with a warning saying what was missing. Then the requests in flight finish (or
 * the deadline comes) and idle keep-alive connections are closed. With no prober at all
 * the fixed delay is all there is, said once.
 *
 * @example
 * ```ts
 * const drain = createDrainWatch(guard, inFlight, () => guard.logger, 1000);
 * guard.use({ name: 'http', phase: 'traffic', prepare: drain.prepare, drainState: drain.state });
 * ```
 */
export function createDrainWatch(
  guard: Guard,
  inFlight: InFlight,
  logger: () => Logger,
  quietMs: number,
): DrainWatch {
  const balancer = guard.balancer ?? { intervalMs: 5000, unhealthyThreshold: 1 };
  const monitor = new DrainMonitor({ ...balancer, quietMs });
  let saidUnprobed = false;
  let saidConfirmed = false;
  const verdict = (): DrainVerdict => {
    const v = monitor.verdict(guard.clock.now(), inFlight.count);
    if (v.state === 'confirmed' && !saidConfirmed) {
      saidConfirmed = true;
      logger().info(
        { probers: monitor.probers(guard.clock.now()).map((p) => p.prober) },
        'freezeguard: the balancers let go: drain confirmed',
      );
    }
    return v;
  };

  return {
    proberOf,
    probed(prober, healthy) {
      if (prober !== null) monitor.probe(prober, healthy, guard.clock.now());
    },
    arrived() {
      monitor.request(guard.clock.now());
    },
    readiness(ready) {
      if (ready) {
        monitor.end();
        saidConfirmed = false;
      } else monitor.begin(guard.clock.now());
    },
    state: () => verdict().state,
    async prepare(ctx) {
      inFlight.beginDrain();
      monitor.begin(guard.clock.now());
      for (;;) {
        const now = guard.clock.now();
        const v = verdict();
        if (v.state === 'confirmed' || ctx.signal.aborted) break;
        if (now >= ctx.drainUntil) {
          if (v.state === 'pending') {
            logger().warn(
              { missing: v.missing, balancer },
              'freezeguard: the balancers did not confirm the drain by drainDelayMs; the traffic phase ends, approval waits for them',
            );
          } else if (!saidUnprobed) {
            saidUnprobed = true;
            logger().info(
              { path: 'readiness' },
              'freezeguard: nothing probes the readiness path: drainDelayMs is all the drain there is',
            );
          }
          break;
        }
        await sleep(guard.timers, Math.min(LOOK_MS, ctx.drainUntil - now), ctx.signal).catch(
          () => {},
        );
      }
      if (inFlight.count > 0 && !ctx.signal.aborted) {
        logger().info({ inFlight: inFlight.count }, 'freezeguard: waiting for in-flight requests');
        await inFlight.settled(ctx.signal);
      }
      if (inFlight.count > 0)
        logger().warn(
          { inFlight: inFlight.count },
          'freezeguard: deadline reached with requests in flight',
        );
      inFlight.closeIdle();
    },
  };
}
