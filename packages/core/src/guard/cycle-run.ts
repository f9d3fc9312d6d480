import { FreezeguardError, toError } from '../errors.js';
import { isShutdownEvent, type MaintenanceEvent } from '../event.js';
import type { Logger } from '../logger.js';
import { type Cycle, type CycleAction, isDraining, openCycle, reduceCycle } from './cycle.js';
import type { Observations } from './observations.js';
import type { Participants, PrepareRun } from './participants.js';
import { planPrepare } from './prepare-plan.js';
import type { CycleInfo, CycleOutcome } from './types.js';

/** A cycle and what runs for it. `cycle` is only ever replaced, by {@link step}. */
export interface Active {
  cycle: Cycle;
  readonly controller: AbortController;
  readonly run: PrepareRun;
  preparing: Promise<void>;
}

/**
 * The one place a cycle changes.
 *
 * @example
 * ```ts
 * step(active, { k: 'prepared' });
 * ```
 */
export function step(a: Active, action: CycleAction): void {
  a.cycle = reduceCycle(a.cycle, action);
}

/** What running a cycle's participants needs from its guard. */
export interface CycleRunDeps {
  readonly participants: Participants;
  readonly logger: Logger;
  readonly seen: Observations;
  readonly drainDelayMs: number;
  readonly prepareTimeoutMs: number;
  /** The event of `guard.shutdown()`, once called. */
  localEvent(): MaintenanceEvent | null;
}

/**
 * Runs the participants' side of a cycle for the guard: the prepare plan and the
 * contexts each participant is called with, the prepare phases, the late traffic phase,
 * the resume, and the facts of the `cycle` event.
 *
 * @example
 * ```ts
 * const a = runner.open({ serial: 1, ids: ['E1'], now, local: false, fleet: false });
 * runner.prepare(a, null, () => evaluate());
 * ```
 */
export class CycleRunner {
  readonly #d: CycleRunDeps;

  constructor(deps: CycleRunDeps) {
    this.#d = deps;
  }

  /** The cycle's events now (the one of `guard.shutdown()` included). */
  events(cycle: Cycle): MaintenanceEvent[] {
    const out: MaintenanceEvent[] = [];
    const local = this.#d.localEvent();
    for (const id of cycle.ids) {
      if (id === local?.id) out.push(local);
      else {
        const e = this.#d.seen.tracker.get(id)?.event;
        if (e) out.push(e);
      }
    }
    return out;
  }

  /** A new cycle, its prepare planned on the notice left before the earliest NotBefore. */
  open(o: Parameters<typeof openCycle>[0]): Active {
    const { seen, logger } = this.#d;
    const events = o.ids.map((id) => seen.tracker.get(id)?.event).filter((e) => e !== undefined);
    const notBefores = events.map((e) => e.notBefore).filter((n): n is number => n !== null);
    const plan = planPrepare(
      o.now,
      notBefores.length > 0 ? Math.min(...notBefores) : null,
      this.#d,
    );
    const controller = new AbortController();
    const a: Active = {
      cycle: openCycle(o),
      controller,
      preparing: Promise.resolve(),
      run: {
        signal: controller.signal,
        plan,
        invoked: new Set(),
        failed: () => step(a, { k: 'prepare-failed' }),
        draining: () => isDraining(a.cycle),
        context: (_p, deadline, signal) => {
          const events = this.events(a.cycle);
          return {
            event: events[0]!,
            events,
            deadline,
            signal,
            drainUntil: a.run.plan.drainUntil,
            shutdown: a.cycle.local || events.some((e) => isShutdownEvent(e.kind)),
            draining: isDraining(a.cycle),
            logger,
          };
        },
      },
    };
    logger.info(
      { eventIds: o.ids, eventType: events[0]?.kind ?? 'Terminate' },
      o.local ? 'freezeguard: preparing for shutdown' : 'freezeguard: preparing for maintenance',
    );
    if (plan.compressed.length > 0) {
      // Expected with a short notice (Preempt: 30 s): worth keeping in status(), not a warning.
      seen.note(
        { eventIds: o.ids, compressed: plan.compressed },
        `freezeguard: short notice, prepare compressed to end before NotBefore: ${plan.compressed.join('; ')}`,
      );
    }
    return a;
  }

  /** Runs the prepare phases (after `slot`, the fleet's answer, when one is asked), then `done`. */
  prepare(a: Active, slot: Promise<void> | null, done: () => void): void {
    const { participants, logger, seen } = this.#d;
    a.preparing = (async () => {
      if (slot) await slot;
      await participants.prepareAll(a.run);
    })()
      .catch((err) =>
        logger.error({ err: toError(err) }, 'freezeguard: prepare failed unexpectedly'),
      )
      .finally(() => {
        step(a, { k: 'prepared' });
        if (a.cycle.prepareFailed && !a.cycle.resuming) {
          seen.warn(
            { eventIds: a.cycle.ids },
            'freezeguard: a participant failed or overran its prepare; this instance will not approve the event',
          );
        }
        done();
      });
  }

  /**
   * A slot came after a refusal: the traffic participants get out of the way now, with a
   * drain planned from now. The first plan's `drainUntil` may be long past: the adapters
   * would not wait for the balancer at all.
   */
  drainLate(a: Active, now: number): void {
    step(a, { k: 'traffic-started' });
    const notBefores = this.events(a.cycle)
      .map((e) => e.notBefore)
      .filter((n): n is number => n !== null);
    a.run.plan = planPrepare(now, notBefores.length > 0 ? Math.min(...notBefores) : null, this.#d);
    for (const p of this.#d.participants.list())
      if (p.phase === 'traffic') void this.#d.participants.prepareOne(p, a.run);
  }

  /** Stops whatever prepare still runs. */
  abort(a: Active, why: string): void {
    a.controller.abort(
      a.cycle.stopping
        ? new FreezeguardError('ERR_STOPPED', 'guard stopped: resuming what was prepared')
        : new FreezeguardError('ERR_CANCELLED', `cycle over: ${why}`),
    );
  }

  /** Waits for the prepare to settle and resumes every participant it called. */
  async resume(
    a: Active,
    outcome: Exclude<CycleOutcome, 'shutdown'>,
  ): Promise<Pick<CycleInfo, 'eventIds' | 'eventType' | 'pausedMs'>> {
    const { participants, logger, seen } = this.#d;
    const events = this.events(a.cycle);
    const cancelled = outcome === 'cancelled';
    const { pausedMs, clockStepMs } = seen.memory.pausedSince(a.cycle.startedAt);
    try {
      await a.preparing;
      await participants.resumeAll(a.run.invoked, (_p, deadline, signal) => ({
        event: events[0]!,
        events,
        cancelled,
        pausedMs,
        clockStepMs,
        deadline,
        signal,
        logger,
      }));
    } catch (err) {
      logger.error({ err: toError(err) }, 'freezeguard: resume failed unexpectedly');
    }
    return {
      eventIds: events.map((e) => e.id),
      eventType: events[0]?.kind ?? 'Freeze',
      pausedMs,
    };
  }

  /** The cycle resumed at `now`: what the lifecycle memory keeps of its events. */
  remember(
    eventIds: readonly string[],
    outcome: Exclude<CycleOutcome, 'shutdown'>,
    now: number,
  ): void {
    const { tracker, memory } = this.#d.seen;
    const tracked = eventIds.map((id) => tracker.get(id)).filter((t) => t !== undefined);
    memory.cycleOver(tracked, outcome, now, tracker.seq);
    tracker.prune(() => false);
  }

  /** The event `shutdown` is emitted with, and the `cycle` event of a VM that will not come back. */
  shutdown(cycle: Cycle, now: number): { event: MaintenanceEvent; info: CycleInfo } {
    const events = this.events(cycle);
    const event =
      events.find((e) => isShutdownEvent(e.kind) && e.id !== 'local-shutdown') ?? events[0]!;
    const { pausedMs } = this.#d.seen.memory.pausedSince(cycle.startedAt);
    const eventIds = [...cycle.ids];
    const info = cycleInfo(
      cycle,
      { outcome: 'shutdown', eventIds, eventType: event.kind, pausedMs },
      now,
    );
    return { event, info };
  }
}

/**
 * The `cycle` event of `cycle`, over at `now`.
 *
 * @example
 * ```ts
 * emit('cycle', cycleInfo(cycle, { outcome: 'resumed', eventIds, eventType: 'Freeze', pausedMs }, now));
 * ```
 */
export function cycleInfo(
  cycle: Cycle,
  facts: Pick<CycleInfo, 'outcome' | 'eventIds' | 'eventType' | 'pausedMs'>,
  now: number,
): CycleInfo {
  const { outcome, eventIds, eventType, pausedMs } = facts;
  // Out of rotation since it drained; 0 when it never did (a fleet member without a slot).
  const outOfRotationMs = cycle.drainedAt === null ? 0 : now - cycle.drainedAt;
  return {
    outcome,
    eventIds,
    eventType,
    startedAt: cycle.startedAt,
    endedAt: now,
    outOfRotationMs,
    pausedMs,
  };
}
