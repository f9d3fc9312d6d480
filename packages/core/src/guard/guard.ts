import type { BalancerProfile } from '../drain/balancer.js';
import { assertOption, FreezeguardError } from '../errors.js';
import type { MaintenanceEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { Clock, TimerHandle, Timers } from '../time/clock.js';
import { BlindWatch } from './blind-watch.js';
import { composeGuard, decideWith, type GuardParts, idleTickMs } from './compose.js';
import { type Cycle, expectedResumeAt, isDraining, localShutdownEvent } from './cycle.js';
import { type Active, cycleInfo, step } from './cycle-run.js';
import { logStartNotes } from './drain.js';
import type { FleetActions } from './fleet-policy.js';
import { announcePlans, WOULD_DRAIN_NOW } from './observe.js';
import type { Decision } from './policy.js';
import { installSignalHandlers, type SignalOptions } from './signals.js';
import { buildStatus } from './status.js';
import type {
  CycleOutcome,
  Guard,
  GuardEventName,
  GuardEvents,
  GuardOptions,
  GuardState,
  GuardStatus,
  Participant,
} from './types.js';
import { fleetContext, sourceContext, type WiringHooks } from './wiring.js';

type Resumed = Exclude<CycleOutcome, 'shutdown'>;

/**
 * The guard interprets decisions: the source feeds the observations, the pause detector
 * feeds pauses, the fleet answers; after each of those (and each timer or finished step)
 * the pure {@link decide} says what to do, and the guard does it with the participants
 * (through the cycle runner), the source (approvals) and the fleet (through its gate).
 * The cycle is a value it replaces with {@link reduceCycle}. It owns the wake-up timer;
 * its parts are built in `compose.ts`.
 */
class GuardImpl implements Guard {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly balancer: BalancerProfile;
  readonly #p: GuardParts;
  readonly #blind: BlindWatch;
  #state: GuardState = 'idle';
  #running = false;
  #stopped = false;
  #active: Active | null = null;
  #serial = 0;
  #wakeTimer: TimerHandle | null = null;
  #localEvent: MaintenanceEvent | null = null;
  #localShutdown: Promise<void> | null = null;
  /** Observe mode: the events whose plan was logged. */
  readonly #announced = new Map<string, number | null>();
  #signals: (() => void) | null = null;
  /** Settles when the last resume finished. */
  #resumed: Promise<void> = Promise.resolve();

  constructor(options: GuardOptions) {
    this.#p = composeGuard(options, {
      evaluate: () => this.#evaluate(),
      active: () => this.#active,
      localEvent: () => this.#localEvent,
    });
    ({ logger: this.logger, clock: this.clock, timers: this.timers } = this.#p);
    this.balancer = this.#p.o.balancer;
    const { source, o } = this.#p;
    this.#blind = new BlindWatch({
      ...this.#p,
      configured: options.source ?? source,
      blindAfterMs: o.blindAfterMs,
    });
  }

  get state(): GuardState {
    return this.#state;
  }

  get resourceName(): string | undefined {
    return this.#p.name.name;
  }

  isReady(): boolean {
    // Observing or disabled: whatever it decides, the instance keeps serving.
    if (this.#p.o.mode !== 'active') return true;
    const cycle = this.#active?.cycle;
    if (cycle) return !isDraining(cycle);
    return this.#state === 'idle' || this.#state === 'scheduled';
  }

  isLive(): boolean {
    return true;
  }

  on<K extends GuardEventName>(name: K, listener: GuardEvents[K]): () => void {
    return this.#p.emitter.on(name, listener);
  }

  once<K extends GuardEventName>(name: K, listener: GuardEvents[K]): () => void {
    return this.#p.emitter.once(name, listener);
  }

  off<K extends GuardEventName>(name: K, listener: GuardEvents[K]): void {
    this.#p.emitter.off(name, listener);
  }

  removeListener<K extends GuardEventName>(name: K, listener: GuardEvents[K]): void {
    this.off(name, listener);
  }

  use(participant: Participant): () => void {
    const remove = this.#p.participants.add(participant);
    const a = this.#active;
    // Joining mid-cycle: it must get out of the way too, and be brought back with the rest.
    if (a && !a.cycle.resuming && this.#running && a.cycle.slot !== 'pending') {
      void this.#p.participants.prepareOne(participant, a.run);
    }
    return remove;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    if (this.#stopped)
      throw new FreezeguardError('ERR_STOPPED', 'a stopped guard cannot be started again');
    if (this.#p.o.mode === 'disabled') {
      // Inert: no polling, no detector, no fleet; one line so nobody wonders why.
      this.logger.info(
        { mode: 'disabled' },
        'freezeguard: disabled: not watching for maintenance, never draining',
      );
      return;
    }
    this.#running = true;
    const hooks: WiringHooks = {
      running: () => this.#running,
      state: () => this.#state,
      isReady: () => this.isReady(),
      active: () => this.#active,
      answered: () => this.#blind.seen(),
      evaluate: () => this.#evaluate(),
    };
    this.#p.fleet?.start(fleetContext(this.#p, hooks));
    this.#p.source.start(sourceContext(this.#p, hooks));
    this.#p.detector.start();
    this.#blind.start();
    if (this.#p.name.name === undefined) this.#p.name.resolve();
    logStartNotes(this.logger, this.#p.o, this.#p.source, this.#p.name.name);
    // requireSource: a guard that cannot see maintenance fails start instead of pretending.
    if (this.#p.o.requireSource)
      await this.#blind.firstAnswer().catch(async (err: unknown) => {
        await this.stop();
        throw err;
      });
  }

  async stop(): Promise<void> {
    if (!this.#running) {
      this.#stopped = true;
      return;
    }
    this.#running = false;
    this.#stopped = true;
    this.#p.detector.stop();
    this.#blind.stop();
    this.#clearWake();
    this.#p.name.stop();
    this.#p.gate?.stop();
    await this.#p.source.stop();
    // Whatever was prepared is brought back: a stopped guard must not leave the app drained.
    const a = this.#active;
    if (a && !a.cycle.local) {
      if (!a.cycle.resuming) await this.#resume(a, 'cancelled', 'guard stopped', true);
      else await this.#resumed;
    }
    await this.#p.fleet?.releaseSlot();
    await this.#p.fleet?.stop();
  }

  shutdown(): Promise<void> {
    if (this.#localShutdown) return this.#localShutdown;
    if (this.#p.o.mode !== 'active') {
      if (this.#p.o.mode === 'observe')
        this.logger.info({ mode: 'observe' }, 'freezeguard: observe: would drain for shutdown now');
      this.#localShutdown = Promise.resolve();
      return this.#localShutdown;
    }
    assertOption(this.#running, 'shutdown()', 'needs a started guard', this.#running);
    const event = localShutdownEvent(this.#p.name.name);
    this.#localEvent = event;
    this.logger.info({}, 'freezeguard: shutting down: draining like a maintenance event');
    const run = async (): Promise<void> => {
      const current = this.#active;
      if (current && !current.cycle.resuming) {
        // Take the cycle over: what it prepared stays prepared, and it never resumes.
        step(current, { k: 'take-over', id: event.id });
        await current.preparing;
        this.#evaluate();
        return;
      }
      if (current) await this.#resumed;
      await this.#open([event.id], this.clock.now(), true, false).preparing;
    };
    this.#localShutdown = run();
    return this.#localShutdown;
  }

  handleSignals(options?: SignalOptions): () => void {
    if (this.#signals) return this.#signals;
    const dispose = installSignalHandlers(this, options);
    this.#signals = () => {
      dispose();
      this.#signals = null;
    };
    return this.#signals;
  }

  expectedResumeAt(): number | null {
    const cycle = this.#active?.cycle;
    const { seen, o } = this.#p;
    return cycle ? expectedResumeAt(cycle, seen.tracker, this.clock.now(), o) : null;
  }

  status(): GuardStatus {
    const status = buildStatus({
      state: this.#state,
      ready: this.isReady(),
      running: this.#running,
      name: this.#p.name,
      source: this.#p.source,
      seen: this.#p.seen,
      approvalsSent: this.#p.approvals.sent,
      cycle: this.#active?.cycle ?? null,
      expectedResumeAt: this.expectedResumeAt(),
      participants: this.#p.participants,
      fleet: this.#p.fleet?.status() ?? null,
      blind: this.#blind.status(),
    });
    return { ...status, mode: this.#p.o.mode };
  }

  #setState(next: GuardState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    this.#p.detector.setTick(next === 'idle' ? idleTickMs(this.#p.o) : this.#p.o.tickIntervalMs);
    this.#p.detector.setActive(next !== 'idle');
    const facts = this.#p.o.mode === 'observe' ? { mode: 'observe' } : {};
    this.logger.info({ state: next, previous, ...facts }, `freezeguard: ${previous} -> ${next}`);
    this.#p.emitter.emit('state', next, previous);
  }

  #clearWake(): void {
    if (this.#wakeTimer !== null) this.timers.clearTimeout(this.#wakeTimer);
    this.#wakeTimer = null;
  }

  #wake(at: number): void {
    this.#clearWake();
    if (!Number.isFinite(at) || !this.#running) return;
    this.#wakeTimer = this.timers.setTimeout(
      () => {
        this.#wakeTimer = null;
        this.#evaluate();
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  #decide(now: number, cycle: Cycle | null): Decision {
    return decideWith(this.#p, now, cycle);
  }

  /** Asks the policy, then runs its decision. Idempotent. */
  #evaluate(): void {
    if (!this.#running) return;
    const now = this.clock.now();
    this.#p.seen.memory.forget(now);
    const a = this.#active;
    const d = this.#decide(now, a?.cycle ?? null);
    if (this.#p.o.mode === 'observe')
      announcePlans(this.#p.seen, this.#announced, now, this.#p.policy, this.logger);
    this.#p.seen.markHandled(d.markHandled);
    if (a && !a.cycle.resuming) {
      for (const { id, why } of d.release) {
        step(a, { k: 'leave', id });
        this.logger.info({ eventId: id }, `freezeguard: event leaves the cycle: ${why}`);
      }
    }
    if (d.admit.length > 0) {
      if (!a) this.#open(d.admit, now, false, d.fleet.askSlot);
      else if (!a.cycle.resuming) {
        step(a, { k: 'join', ids: d.admit });
        this.logger.info({ eventIds: d.admit }, 'freezeguard: event joins the current cycle');
      }
    }
    if (!a) {
      this.#setState(d.state);
      this.#wake(d.wakeAt);
      return;
    }
    if (d.resume) {
      const { outcome, why } = d.resume;
      if (outcome === 'failsafe')
        this.#p.seen.warn({ eventIds: a.cycle.ids }, `freezeguard: resuming anyway: ${why}`);
      void this.#resume(a, outcome, why, false);
      return;
    }
    for (const id of d.approve) {
      const t = this.#p.seen.tracker.get(id);
      if (t) this.#p.approvals.send(t.event);
    }
    this.#runFleet(a, d.fleet);
    this.#setState(d.state);
    if (d.announceShutdown) this.#announceShutdown(a);
    this.#wake(d.wakeAt);
  }

  #open(ids: readonly string[], now: number, local: boolean, askSlot: boolean): Active {
    const a = this.#p.runner.open({ serial: ++this.#serial, ids, now, local, fleet: askSlot });
    this.#active = a;
    if (this.#p.o.mode === 'observe')
      this.logger.info({ mode: 'observe', eventIds: ids }, WOULD_DRAIN_NOW);
    this.#setState('preparing');
    // A fleet member learns whether it may drain before its traffic phase.
    this.#p.runner.prepare(a, askSlot ? (this.#p.gate?.askSlot(a) ?? null) : null, () => {
      if (this.#active === a && !a.cycle.resuming) this.#evaluate();
    });
    return a;
  }

  /** Runs the fleet half of a decision. */
  #runFleet(a: Active, f: FleetActions): void {
    this.#p.gate?.apply(a, f, {
      drainLate: (x) => {
        this.#p.runner.drainLate(x, this.clock.now());
        // Same state, new readiness: adapters and the fleet read isReady() again.
        this.#p.emitter.emit('state', this.#state, this.#state);
      },
      event: (id) => this.#p.seen.tracker.get(id)?.event,
      idle: () => !this.#active,
    });
  }

  #announceShutdown(a: Active): void {
    step(a, { k: 'shutdown-announced' });
    const { event, info } = this.#p.runner.shutdown(a.cycle, this.clock.now());
    this.#p.emitter.emit('shutdown', event);
    this.#p.emitter.emit('cycle', info);
  }

  #resume(a: Active, outcome: Resumed, why: string, stopping: boolean): Promise<void> {
    step(a, { k: 'resume', failsafe: outcome === 'failsafe', stopping });
    this.#resumed = this.#runResume(a, outcome, why);
    return this.#resumed;
  }

  async #runResume(a: Active, outcome: Resumed, why: string): Promise<void> {
    this.#p.runner.abort(a, why);
    this.#clearWake();
    if (!a.cycle.stopping) this.#setState('resuming');
    const { eventIds, eventType, pausedMs } = await this.#p.runner.resume(a, outcome);
    // The slot goes back once the load balancer has had drainDelayMs to see this instance healthy.
    step(a, { k: 'resumed' });
    this.#runFleet(a, this.#decide(this.clock.now(), a.cycle).fleet);
    if (this.#active !== a) return;
    const now = this.clock.now();
    this.#p.runner.remember(eventIds, outcome, now);
    this.#active = null;
    const cancelled = outcome === 'cancelled';
    const failsafe = outcome === 'failsafe';
    this.logger.info({ cancelled, pausedMs, failsafe, why }, 'freezeguard: resumed');
    this.#p.emitter.emit('resumed', { cancelled, pausedMs, failsafe });
    this.#p.emitter.emit(
      'cycle',
      cycleInfo(a.cycle, { outcome, eventIds, eventType, pausedMs }, now),
    );
    if (this.#running) this.#evaluate();
    else this.#setState('idle');
  }
}

/**
 * The guard without a default source: what `createGuard()` wraps. Use `createGuard()`.
 *
 * @example
 * ```ts
 * const guard = createGuardWithSource({ source: new MemorySource({ resourceName: 'vm-1' }) });
 * ```
 */
export function createGuardWithSource(options: GuardOptions): Guard {
  return new GuardImpl(options);
}

export { assertGuard } from './assert.js';
export type { SignalOptions } from './signals.js';
export * from './types.js';
