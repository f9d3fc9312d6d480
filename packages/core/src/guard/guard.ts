import { isShutdownEvent, type ScheduledEvent } from '../document.js';
import { assertOption, FreezeguardError, toError } from '../errors.js';
import type { FleetCoordinator } from '../fleet.js';
import { createConsoleLogger, type Logger } from '../logger.js';
import type { MaintenanceSource } from '../sources/source.js';
import {
  type Clock,
  systemClock,
  systemTimers,
  type TimerHandle,
  type Timers,
} from '../time/clock.js';
import { createPauseDetector, type PauseDetector } from '../time/pause.js';
import { Approvals } from './approvals.js';
import {
  type Cycle,
  type CycleAction,
  expectedEnd,
  isDraining,
  localShutdownEvent,
  openCycle,
  reduceCycle,
} from './cycle.js';
import { FleetGate } from './fleet-gate.js';
import { type FleetActions, slotNotes } from './fleet-policy.js';
import { GuardListeners } from './listeners.js';
import { Observations } from './observations.js';
import { type ResolvedOptions, resolveGuardOptions } from './options.js';
import { Participants, type PrepareRun } from './participants.js';
import { type Decision, decide } from './policy.js';
import { planPrepare } from './prepare-plan.js';
import { ResourceName } from './resource-name.js';
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

/** A cycle and what the guard runs for it. `cycle` is only ever replaced, by `#update`. */
interface Active {
  cycle: Cycle;
  readonly controller: AbortController;
  readonly run: PrepareRun;
  preparing: Promise<void>;
}

/**
 * The guard interprets decisions: the source feeds the observations, the pause detector
 * feeds pauses, the fleet answers; after each of those (and each timer or finished step)
 * the pure {@link decide} says what to do, and the guard does it with the participants,
 * the source (approvals) and the fleet. The cycle is a value it replaces with
 * {@link reduceCycle}. It owns every timer.
 */
class GuardImpl implements Guard {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly #o: ResolvedOptions;
  readonly #source: MaintenanceSource;
  readonly #fleet: FleetCoordinator | undefined;
  readonly #gate: FleetGate | undefined;
  readonly #emitter: GuardListeners;
  readonly #participants: Participants;
  readonly #seen: Observations;
  readonly #approvals: Approvals;
  readonly #detector: PauseDetector;
  readonly #name: ResourceName;
  #state: GuardState = 'idle';
  #running = false;
  #stopped = false;
  #active: Active | null = null;
  #serial = 0;
  #wakeTimer: TimerHandle | null = null;
  #localEvent: ScheduledEvent | null = null;
  #localShutdown: Promise<void> | null = null;
  /** Settles when the last resume finished. */
  #resumed: Promise<void> = Promise.resolve();

  constructor(options: GuardOptions) {
    this.#o = resolveGuardOptions(options);
    assertOption(
      options.source !== undefined,
      'source',
      'must be a maintenance source (createGuard() from @freezeguard/core supplies the default)',
      options.source,
    );
    this.logger = options.logger ?? createConsoleLogger();
    this.clock = options.clock ?? systemClock;
    this.timers = options.timers ?? systemTimers;
    this.#fleet = options.fleet;
    this.#gate = this.#fleet
      ? new FleetGate(this.#fleet, this.timers, this.#o.drainDelayMs)
      : undefined;
    this.#source = this.#fleet ? this.#fleet.wrapSource(options.source) : options.source;
    this.#seen = new Observations(this.logger, this.clock);
    this.#name = new ResourceName(this.#o.resourceName, {
      source: this.#source,
      timers: this.timers,
      logger: this.logger,
      resolved: () => {
        this.#seen.tracker.reclassify(this.#rules());
        this.#evaluate();
      },
    });
    this.#emitter = new GuardListeners(() => this.logger);
    this.#approvals = new Approvals(this.#source, this.logger, {
      approved: (event) => {
        this.#emitter.emit('approved', { eventId: event.EventId, event });
        this.#evaluate();
      },
      failed: (error) => this.#emitter.emit('error', error),
    });
    this.#participants = new Participants({
      clock: this.clock,
      timers: this.timers,
      logger: this.logger,
      prepareTimeoutMs: this.#o.prepareTimeoutMs,
      resumeTimeoutMs: this.#o.resumeTimeoutMs,
      onCall: (info) => this.#emitter.emit('participant', info),
      warn: (facts, message) => this.#seen.warn(facts, message),
    });
    this.#detector = createPauseDetector({
      clock: this.clock,
      timers: this.timers,
      thresholdMs: this.#o.pauseThresholdMs,
      tickMs: this.#idleTickMs(),
      // The second observer (a worker thread, ~9 MiB) only runs once an event is known.
      active: false,
      onPause: (pause) => {
        this.#seen.lastPause = pause;
        this.#emitter.emit('pause', pause);
        if (this.#seen.pause(pause) && this.#active) this.#evaluate();
      },
    });
  }

  get state(): GuardState {
    return this.#state;
  }

  get resourceName(): string | undefined {
    return this.#name.name;
  }

  isReady(): boolean {
    const cycle = this.#active?.cycle;
    if (cycle) return !isDraining(cycle);
    return this.#state === 'idle' || this.#state === 'scheduled';
  }

  isLive(): boolean {
    return this.#state !== 'shutting-down' || this.#active?.cycle.local === true;
  }

  on<K extends GuardEventName>(name: K, listener: GuardEvents[K]): () => void {
    return this.#emitter.on(name, listener);
  }

  once<K extends GuardEventName>(name: K, listener: GuardEvents[K]): () => void {
    return this.#emitter.once(name, listener);
  }

  off<K extends GuardEventName>(name: K, listener: GuardEvents[K]): void {
    this.#emitter.off(name, listener);
  }

  removeListener<K extends GuardEventName>(name: K, listener: GuardEvents[K]): void {
    this.off(name, listener);
  }

  use(participant: Participant): () => void {
    const remove = this.#participants.add(participant);
    const a = this.#active;
    // Joining mid-cycle: it must get out of the way too, and be brought back with the rest.
    if (a && !a.cycle.resuming && this.#running && a.cycle.slot !== 'pending') {
      void this.#participants.prepareOne(participant, a.run);
    }
    return remove;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    if (this.#stopped)
      throw new FreezeguardError('ERR_STOPPED', 'a stopped guard cannot be started again');
    this.#running = true;
    this.#fleet?.start({
      logger: this.logger,
      clock: this.clock,
      timers: this.timers,
      member: () => ({ state: this.#state, ready: this.isReady(), resourceName: this.#name.name }),
      onChange: () => {
        const a = this.#active;
        if (a && !a.cycle.resuming) this.#update(a, { k: 'fleet-changed', now: this.clock.now() });
        this.#evaluate();
      },
    });
    this.#source.start({
      logger: this.logger,
      clock: this.clock,
      timers: this.timers,
      onDocument: (document) => {
        if (!this.#running) return;
        const inCycle = new Set(this.#active?.cycle.ids ?? []);
        if (this.#seen.document(document, this.clock.now(), this.#rules(), inCycle))
          this.#emitter.emit('event', document);
        this.#evaluate();
      },
      onError: (error, streak) => {
        // Once per failure streak, like the log: a flapping IMDS must not flood listeners.
        if (streak === 1) this.#emitter.emit('error', error);
      },
      onTimeReference: (sample) => this.#detector.reference(sample),
    });
    this.#detector.start();
    if (this.#name.name === undefined) this.#name.resolve();
    if (this.#o.approve !== 'never' && this.#source.supportsApproval === false) {
      this.logger.info(
        { source: this.#source.kind, approve: this.#o.approve },
        `freezeguard: approve '${this.#o.approve}' does not apply to ${this.#source.kind}, which has no approval call`,
      );
    }
    this.logger.info(
      { source: this.#source.kind, resourceName: this.#name.name ?? null },
      'freezeguard: watching for maintenance events',
    );
  }

  async stop(): Promise<void> {
    if (!this.#running) {
      this.#stopped = true;
      return;
    }
    this.#running = false;
    this.#stopped = true;
    this.#detector.stop();
    this.#clearWake();
    this.#name.stop();
    this.#gate?.stop();
    await this.#source.stop();
    // Whatever was prepared is brought back: a stopped guard must not leave the app drained.
    const a = this.#active;
    if (a && !a.cycle.local) {
      if (!a.cycle.resuming) await this.#resume(a, 'cancelled', 'guard stopped', true);
      else await this.#resumed;
    }
    await this.#fleet?.releaseSlot();
    await this.#fleet?.stop();
  }

  shutdown(): Promise<void> {
    if (this.#localShutdown) return this.#localShutdown;
    assertOption(this.#running, 'shutdown()', 'needs a started guard', this.#running);
    const event = localShutdownEvent(this.#name.name);
    this.#localEvent = event;
    this.logger.info({}, 'freezeguard: shutting down: draining like a maintenance event');
    const run = async (): Promise<void> => {
      const current = this.#active;
      if (current && !current.cycle.resuming) {
        // Take the cycle over: what it prepared stays prepared, and it never resumes.
        this.#update(current, { k: 'take-over', id: event.EventId });
        await current.preparing;
        this.#evaluate();
        return;
      }
      if (current) await this.#resumed;
      await this.#open([event.EventId], this.clock.now(), true, false).preparing;
    };
    this.#localShutdown = run();
    return this.#localShutdown;
  }

  expectedResumeAt(): number | null {
    const cycle = this.#active?.cycle;
    if (!cycle) return null;
    const now = this.clock.now();
    if (cycle.resuming) return now;
    return expectedEnd(
      cycle.ids.map((id) => this.#seen.tracker.get(id)),
      now,
      this.#o.maxHoldMs,
    );
  }

  status(): GuardStatus {
    const cycle = this.#active?.cycle;
    const seen = this.#seen;
    return buildStatus({
      state: this.#state,
      ready: this.isReady(),
      running: this.#running,
      resourceName: this.#name.name,
      resourceNameError: this.#name.error,
      source: {
        kind: this.#source.kind,
        documentIncarnation: seen.tracker.incarnation,
        ...this.#source.health(),
      },
      events: seen.tracker.list(),
      handled: seen.memory.handled,
      approvalsSent: this.#approvals.sent,
      cycle: cycle
        ? {
            startedAt: cycle.startedAt,
            eventIds: cycle.ids,
            prepared: cycle.prepared,
            prepareFailed: cycle.prepareFailed,
            draining: isDraining(cycle),
            failsafe: cycle.failsafe,
          }
        : null,
      expectedResumeAt: this.expectedResumeAt(),
      participants: this.#participants,
      lastPause: seen.lastPause,
      documentProblems: seen.documentProblems,
      fleet: this.#fleet?.status() ?? null,
      warnings: seen.warnings,
    });
  }

  #rules() {
    const { name, error } = this.#name;
    return { resourceName: name, resourceNameError: error, eventTypes: this.#o.eventTypes };
  }

  /** The one place a cycle changes. */
  #update(a: Active, action: CycleAction): void {
    a.cycle = reduceCycle(a.cycle, action);
  }

  #setState(next: GuardState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    this.#detector.setTick(next === 'idle' ? this.#idleTickMs() : this.#o.tickIntervalMs);
    this.#detector.setActive(next !== 'idle');
    this.logger.info({ state: next, previous }, `freezeguard: ${previous} → ${next}`);
    this.#emitter.emit('state', next, previous);
  }

  // With nothing announced a pause changes nothing but the report, so the detector looks
  // less often: an idle guard must cost next to nothing.
  #idleTickMs(): number {
    return Math.max(
      this.#o.tickIntervalMs,
      Math.min(this.#o.pauseThresholdMs / 2, this.#o.tickIntervalMs * 4),
    );
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
    const { tracker, memory, lastDocumentAt } = this.#seen;
    return decide({
      now,
      options: {
        leadTimeMs: this.#o.leadTimeMs,
        maxHoldMs: this.#o.maxHoldMs,
        resumeWhen: this.#o.resumeWhen,
        approve: this.#o.approve,
        canApprove: this.#source.supportsApproval !== false,
        drainDelayMs: this.#o.drainDelayMs,
        fleet: this.#gate !== undefined,
      },
      resourceName: this.#name.name,
      events: tracker.list(),
      handled: memory.handled,
      recent: memory.recent,
      cycle,
      approvalsSent: this.#approvals.sent,
      pauses: memory.pauses,
      lastDocumentAt,
      seq: tracker.seq,
    });
  }

  /** Asks the policy, then runs its decision. Idempotent. */
  #evaluate(): void {
    if (!this.#running) return;
    const now = this.clock.now();
    this.#seen.memory.forget(now);
    const a = this.#active;
    const d = this.#decide(now, a?.cycle ?? null);
    for (const mark of d.markHandled) {
      this.#seen.memory.handled.set(mark.id, mark);
      this.logger.info(
        { eventId: mark.id },
        'freezeguard: a new EventId for the maintenance that just ran; not draining again',
      );
    }
    if (a && !a.cycle.resuming) {
      for (const { id, why } of d.release) {
        this.#update(a, { k: 'leave', id });
        this.logger.info({ eventId: id }, `freezeguard: event leaves the cycle: ${why}`);
      }
    }
    if (d.admit.length > 0) {
      if (!a) this.#open(d.admit, now, false, d.fleet.askSlot);
      else if (!a.cycle.resuming) {
        this.#update(a, { k: 'join', ids: d.admit });
        this.logger.info({ eventIds: d.admit }, 'freezeguard: event joins the current cycle');
      }
    }
    if (!a) {
      this.#setState(d.state);
      this.#wake(d.wakeAt);
      return;
    }
    if (d.resume) {
      if (d.resume.outcome === 'failsafe')
        this.#seen.warn({ eventIds: a.cycle.ids }, `freezeguard: resuming anyway: ${d.resume.why}`);
      void this.#resume(a, d.resume.outcome, d.resume.why, false);
      return;
    }
    for (const id of d.approve) {
      const t = this.#seen.tracker.get(id);
      if (t) this.#approvals.send(t.event);
    }
    this.#runFleet(a, d.fleet);
    this.#setState(d.state);
    if (d.announceShutdown) this.#announceShutdown(a);
    this.#wake(d.wakeAt);
  }

  #open(ids: readonly string[], now: number, local: boolean, askSlot: boolean): Active {
    const { tracker } = this.#seen;
    const events = ids.map((id) => tracker.get(id)?.event).filter((e) => e !== undefined);
    const notBefores = events.map((e) => e.notBefore).filter((n): n is number => n !== null);
    const plan = planPrepare(now, notBefores.length > 0 ? Math.min(...notBefores) : null, this.#o);
    const controller = new AbortController();
    const cycle = openCycle({ serial: ++this.#serial, ids, now, local, fleet: askSlot });
    const a: Active = {
      cycle,
      controller,
      preparing: Promise.resolve(),
      run: {
        signal: controller.signal,
        plan,
        invoked: new Set(),
        failed: () => this.#update(a, { k: 'prepare-failed' }),
        draining: () => isDraining(a.cycle),
        context: (_p, deadline, signal) => {
          const events = this.#cycleEvents(a.cycle);
          return {
            event: events[0]!,
            events,
            deadline,
            signal,
            drainUntil: plan.drainUntil,
            shutdown: a.cycle.local || events.some((e) => isShutdownEvent(e.EventType)),
            draining: isDraining(a.cycle),
            logger: this.logger,
          };
        },
      },
    };
    this.#active = a;
    this.logger.info(
      { eventIds: ids, eventType: events[0]?.EventType ?? 'Terminate' },
      local ? 'freezeguard: preparing for shutdown' : 'freezeguard: preparing for maintenance',
    );
    if (plan.compressed.length > 0) {
      // Expected with a short notice (Preempt: 30 s): worth keeping in status(), not a warning.
      this.#seen.note(
        { eventIds: ids, compressed: plan.compressed },
        `freezeguard: short notice, prepare compressed to end before NotBefore: ${plan.compressed.join('; ')}`,
      );
    }
    this.#setState('preparing');
    // A fleet member learns whether it may drain before its traffic phase.
    const slot = askSlot ? this.#askSlot(a) : null;
    a.preparing = (async () => {
      if (slot) await slot;
      await this.#participants.prepareAll(a.run);
    })()
      .catch((err) =>
        this.logger.error({ err: toError(err) }, 'freezeguard: prepare failed unexpectedly'),
      )
      .finally(() => {
        this.#update(a, { k: 'prepared' });
        if (a.cycle.prepareFailed && !a.cycle.resuming) {
          this.#seen.warn(
            { eventIds: a.cycle.ids },
            'freezeguard: a participant failed or overran its prepare; this instance will not approve the event',
          );
        }
        if (this.#active === a && !a.cycle.resuming) this.#evaluate();
      });
    return a;
  }

  #cycleEvents(cycle: Cycle): ScheduledEvent[] {
    const out: ScheduledEvent[] = [];
    for (const id of cycle.ids) {
      if (id === this.#localEvent?.EventId) out.push(this.#localEvent);
      else {
        const e = this.#seen.tracker.get(id)?.event;
        if (e) out.push(e);
      }
    }
    return out;
  }

  /** Runs the fleet half of a decision. */
  #runFleet(a: Active, f: FleetActions): void {
    const gate = this.#gate;
    if (!gate) return;
    if (f.askSlot) void this.#askSlot(a);
    if (f.drain) {
      this.#update(a, { k: 'traffic-started' });
      for (const p of this.#participants.list())
        if (p.phase === 'traffic') void this.#participants.prepareOne(p, a.run);
      // Same state, new readiness: adapters and the fleet read isReady() again.
      this.#emitter.emit('state', this.#state, this.#state);
    }
    for (const id of f.report) {
      const t = this.#seen.tracker.get(id);
      if (!t) continue;
      this.#update(a, { k: 'reported', id });
      void gate.prepared(t.event).then((last) => {
        if (!last || this.#active !== a || a.cycle.resuming) return;
        this.#update(a, { k: 'last-to-prepare', id });
        this.#evaluate();
      });
    }
    if (f.release) gate.release(f.release, () => !this.#active);
  }

  /** Asks the fleet for a drain slot; the answer is a step of the cycle. */
  async #askSlot(a: Active): Promise<void> {
    this.#update(a, { k: 'ask-slot' });
    const answer = await this.#gate!.acquire(a.cycle.ids);
    if (this.#active !== a || a.cycle.resuming) {
      // Asked for a cycle that is over: a slot granted now is not needed.
      if (answer === 'granted') this.#gate!.release('now', () => true);
      return;
    }
    const before = a.cycle;
    this.#update(a, { k: 'slot-answer', answer, now: this.clock.now() });
    for (const { level, message } of slotNotes(before, a.cycle)) {
      if (level === 'warn') this.#seen.warn({ eventIds: a.cycle.ids }, message);
      else this.logger.info({ eventIds: a.cycle.ids }, message);
    }
    this.#evaluate();
  }

  #announceShutdown(a: Active): void {
    this.#update(a, { k: 'shutdown-announced' });
    const cycle = a.cycle;
    const events = this.#cycleEvents(cycle);
    const event =
      events.find((e) => isShutdownEvent(e.EventType) && e.EventId !== 'local-shutdown') ??
      events[0]!;
    this.#emitter.emit('shutdown', event);
    const now = this.clock.now();
    this.#emitter.emit('cycle', {
      outcome: 'shutdown',
      eventIds: [...cycle.ids],
      eventType: event.EventType,
      startedAt: cycle.startedAt,
      endedAt: now,
      outOfRotationMs: cycle.drainedAt === null ? 0 : now - cycle.drainedAt,
      pausedMs: this.#seen.memory.pausedSince(cycle.startedAt).pausedMs,
    });
  }

  #resume(
    a: Active,
    outcome: Exclude<CycleOutcome, 'shutdown'>,
    why: string,
    stopping: boolean,
  ): Promise<void> {
    this.#update(a, { k: 'resume', failsafe: outcome === 'failsafe', stopping });
    this.#resumed = this.#runResume(a, outcome, why);
    return this.#resumed;
  }

  async #runResume(
    a: Active,
    outcome: Exclude<CycleOutcome, 'shutdown'>,
    why: string,
  ): Promise<void> {
    const stopping = a.cycle.stopping;
    a.controller.abort(
      stopping
        ? new FreezeguardError('ERR_STOPPED', 'guard stopped: resuming what was prepared')
        : new FreezeguardError('ERR_CANCELLED', `cycle over: ${why}`),
    );
    this.#clearWake();
    if (!stopping) this.#setState('resuming');
    const events = this.#cycleEvents(a.cycle);
    const cancelled = outcome === 'cancelled';
    const { memory, tracker } = this.#seen;
    const { pausedMs, clockStepMs } = memory.pausedSince(a.cycle.startedAt);
    try {
      await a.preparing;
      await this.#participants.resumeAll(a.run.invoked, (_p, deadline, signal) => ({
        event: events[0]!,
        events,
        cancelled,
        pausedMs,
        clockStepMs,
        deadline,
        signal,
        logger: this.logger,
      }));
    } catch (err) {
      this.logger.error({ err: toError(err) }, 'freezeguard: resume failed unexpectedly');
    }
    // The slot goes back once the load balancer has had drainDelayMs to see this instance healthy.
    this.#update(a, { k: 'resumed' });
    this.#runFleet(a, this.#decide(this.clock.now(), a.cycle).fleet);
    if (this.#active !== a) return;
    const now = this.clock.now();
    const tracked = events.map((e) => tracker.get(e.EventId)).filter((t) => t !== undefined);
    memory.cycleOver(tracked, outcome, now, tracker.seq);
    this.#active = null;
    tracker.prune(() => false);
    const failsafe = outcome === 'failsafe';
    this.logger.info({ cancelled, pausedMs, failsafe, why }, 'freezeguard: resumed');
    this.#emitter.emit('resumed', { cancelled, pausedMs, failsafe });
    this.#emitter.emit('cycle', {
      outcome,
      eventIds: events.map((e) => e.EventId),
      eventType: events[0]?.EventType ?? 'Freeze',
      startedAt: a.cycle.startedAt,
      endedAt: now,
      outOfRotationMs: a.cycle.drainedAt === null ? 0 : now - a.cycle.drainedAt,
      pausedMs,
    });
    if (this.#running) this.#evaluate();
    else this.#setState('idle');
  }
}

/**
 * Throws `ERR_BAD_OPTION` unless `guard` is a guard: every adapter checks its first
 * argument with this.
 *
 * @example
 * ```ts
 * export function guardThing(guard: Guard, thing: Thing) {
 *   assertGuard(guard);
 *   …
 * }
 * ```
 */
export function assertGuard(guard: unknown): asserts guard is Guard {
  assertOption(
    typeof guard === 'object' && guard !== null && typeof (guard as Guard).use === 'function',
    'guard',
    'must be a guard from createGuard()',
    guard,
  );
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

export * from './types.js';
