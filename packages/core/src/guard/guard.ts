import { isShutdownEvent, type ScheduledEvent, type ScheduledEventsDocument } from '../document.js';
import { TypedEmitter } from '../emitter.js';
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
import { createPauseDetector, type PauseDetector, type PauseInfo } from '../time/pause.js';
import { Approvals } from './approvals.js';
import { type Cycle, expectedEnd, localShutdownEvent, newCycle } from './cycle.js';
import { FleetGate } from './fleet-gate.js';
import { LifecycleMemory } from './memory.js';
import { type ResolvedOptions, resolveGuardOptions } from './options.js';
import { Participants } from './participants.js';
import { type Decision, decide, planPrepare } from './policy.js';
import { buildStatus } from './status.js';
import { EventTracker, type RelevanceRules } from './tracker.js';
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

/**
 * The guard composes the parts: the source feeds the {@link EventTracker}, the pause
 * detector feeds observed pauses, and after each of those (and each timer or finished
 * step) the pure {@link decide} says what to do; the guard applies it with the
 * participant registry, the source (approvals) and the fleet. It owns every timer.
 */
class GuardImpl implements Guard {
  readonly logger: Logger;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly #o: ResolvedOptions;
  readonly #source: MaintenanceSource;
  readonly #fleet: FleetCoordinator | undefined;
  readonly #gate: FleetGate | undefined;
  readonly #emitter: TypedEmitter<GuardEvents>;
  readonly #participants: Participants;
  readonly #tracker = new EventTracker();
  readonly #memory = new LifecycleMemory();
  readonly #approvals: Approvals;
  readonly #warnings: { at: string; message: string }[] = [];
  readonly #detector: PauseDetector;
  #state: GuardState = 'idle';
  #running = false;
  #stopped = false;
  #cycle: Cycle | null = null;
  #wakeTimer: TimerHandle | null = null;
  #nameTimer: TimerHandle | null = null;
  #resourceName: string | undefined;
  #resourceNameError: string | null = null;
  #lastPause: PauseInfo | null = null;
  #lastDocumentAt: number | null = null;
  #documentProblems: readonly string[] = [];
  #localShutdown: Promise<void> | null = null;

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
      ? new FleetGate(this.#fleet, options.timers ?? systemTimers, this.#o.drainDelayMs)
      : undefined;
    this.#source = this.#fleet ? this.#fleet.wrapSource(options.source) : options.source;
    this.#resourceName = this.#o.resourceName;
    this.#emitter = new TypedEmitter<GuardEvents>(() => this.logger);
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
      warn: (facts, message) => this.#warn(facts, message),
    });
    this.#detector = createPauseDetector({
      clock: this.clock,
      timers: this.timers,
      thresholdMs: this.#o.pauseThresholdMs,
      tickMs: this.#idleTickMs(),
      // The second observer (a worker thread, ~9 MiB) only runs once an event is known.
      active: false,
      onPause: (pause) => this.#onPause(pause),
    });
  }

  get state(): GuardState {
    return this.#state;
  }

  get resourceName(): string | undefined {
    return this.#resourceName;
  }

  isReady(): boolean {
    const cycle = this.#cycle;
    if (cycle) return !cycle.draining;
    return this.#state === 'idle' || this.#state === 'scheduled';
  }

  isLive(): boolean {
    return this.#state !== 'shutting-down' || this.#cycle?.local === true;
  }

  on<K extends GuardEventName>(name: K, listener: GuardEvents[K]): () => void {
    return this.#emitter.on(name, listener);
  }

  once<K extends GuardEventName>(name: K, listener: GuardEvents[K]): () => void {
    const off = this.#emitter.on(name, ((...args: Parameters<GuardEvents[K]>) => {
      off();
      (listener as (...a: Parameters<GuardEvents[K]>) => void)(...args);
    }) as GuardEvents[K]);
    // events.once() removes the listener it gave, not our wrapper: map one to the other.
    this.#onceWrappers.set(listener, off);
    return off;
  }

  readonly #onceWrappers = new WeakMap<object, () => void>();

  off<K extends GuardEventName>(name: K, listener: GuardEvents[K]): void {
    this.#emitter.off(name, listener);
    this.#onceWrappers.get(listener)?.();
  }

  removeListener<K extends GuardEventName>(name: K, listener: GuardEvents[K]): void {
    this.off(name, listener);
  }

  use(participant: Participant): () => void {
    const remove = this.#participants.add(participant);
    const cycle = this.#cycle;
    // Joining mid-cycle: it must get out of the way too, and be brought back with the rest.
    if (cycle && !cycle.resuming && this.#running && cycle.slot !== 'pending') {
      void this.#participants.prepareOne(participant, cycle.run);
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
      member: () => ({
        state: this.#state,
        ready: this.isReady(),
        resourceName: this.#resourceName,
      }),
      onChange: () => this.#onFleetChange(),
    });
    this.#source.start({
      logger: this.logger,
      clock: this.clock,
      timers: this.timers,
      onDocument: (document) => this.#onDocument(document),
      onError: (error, streak) => {
        // Once per failure streak, like the log: a flapping IMDS must not flood listeners.
        if (streak === 1) this.#emitter.emit('error', error);
      },
      onTimeReference: (sample) => this.#detector.reference(sample),
    });
    this.#detector.start();
    if (this.#resourceName === undefined) this.#resolveName(0);
    if (this.#o.approve !== 'never' && this.#source.supportsApproval === false) {
      this.logger.info(
        { source: this.#source.kind, approve: this.#o.approve },
        `freezeguard: approve '${this.#o.approve}' does not apply to ${this.#source.kind}, which has no approval call`,
      );
    }
    this.logger.info(
      { source: this.#source.kind, resourceName: this.#resourceName ?? null },
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
    if (this.#nameTimer !== null) this.timers.clearTimeout(this.#nameTimer);
    this.#gate?.stop();
    await this.#source.stop();
    // Whatever was prepared is brought back: a stopped guard must not leave the app drained.
    const cycle = this.#cycle;
    if (cycle && !cycle.local) {
      if (!cycle.resuming) await this.#resume(cycle, 'cancelled', 'guard stopped', true);
      else await this.#resumed;
    }
    await this.#fleet?.releaseSlot();
    await this.#fleet?.stop();
  }

  shutdown(): Promise<void> {
    if (this.#localShutdown) return this.#localShutdown;
    assertOption(this.#running, 'shutdown()', 'needs a started guard', this.#running);
    const event = localShutdownEvent(this.#resourceName);
    this.#localEvent = event;
    this.logger.info({}, 'freezeguard: shutting down: draining like a maintenance event');
    const run = async (): Promise<void> => {
      const current = this.#cycle;
      if (current && !current.resuming) {
        // Take the cycle over: what it prepared stays prepared, and it never resumes.
        current.local = true;
        current.ids.push(event.EventId);
        await current.preparing;
        this.#evaluate();
        return;
      }
      if (current) await this.#resumed;
      const cycle = this.#beginCycle([event.EventId], this.clock.now(), true);
      await cycle.preparing;
    };
    this.#localShutdown = run();
    return this.#localShutdown;
  }

  #localEvent: ScheduledEvent | null = null;
  /** Settles when the last resume finished. */
  #resumed: Promise<void> = Promise.resolve();

  expectedResumeAt(): number | null {
    const cycle = this.#cycle;
    if (!cycle) return null;
    const now = this.clock.now();
    if (cycle.resuming) return now;
    return expectedEnd(
      cycle.ids.map((id) => this.#tracker.get(id)),
      now,
      this.#o.maxHoldMs,
    );
  }

  status(): GuardStatus {
    const cycle = this.#cycle;
    return buildStatus({
      state: this.#state,
      ready: this.isReady(),
      running: this.#running,
      resourceName: this.#resourceName,
      resourceNameError: this.#resourceNameError,
      source: {
        kind: this.#source.kind,
        documentIncarnation: this.#tracker.incarnation,
        ...this.#source.health(),
      },
      events: this.#tracker.list(),
      handled: this.#memory.handled,
      approvalsSent: this.#approvals.sent,
      cycle: cycle
        ? {
            startedAt: cycle.startedAt,
            eventIds: cycle.ids,
            prepared: cycle.prepared,
            prepareFailed: cycle.run.failed,
            draining: cycle.draining,
            failsafe: cycle.failsafe,
          }
        : null,
      expectedResumeAt: this.expectedResumeAt(),
      participants: this.#participants,
      lastPause: this.#lastPause,
      documentProblems: this.#documentProblems,
      fleet: this.#fleet?.status() ?? null,
      warnings: this.#warnings,
    });
  }

  #warn(facts: object, message: string): void {
    this.logger.warn(facts, message);
    this.#keep(message);
  }

  /** Logged at info, and kept in `status().warnings` for the operator. */
  #note(facts: object, message: string): void {
    this.logger.info(facts, message);
    this.#keep(message);
  }

  #keep(message: string): void {
    this.#warnings.push({ at: new Date(this.clock.now()).toISOString(), message });
    if (this.#warnings.length > 20) this.#warnings.shift();
  }

  #rules(): RelevanceRules {
    return {
      resourceName: this.#resourceName,
      resourceNameError: this.#resourceNameError,
      eventTypes: this.#o.eventTypes,
    };
  }

  #resolveName(attempt: number): void {
    this.#source.resolveResourceName().then(
      (name) => {
        if (!this.#running) return;
        if (!name) throw new Error('the source returned an empty resource name');
        this.#resourceName = name;
        this.#resourceNameError = null;
        this.logger.info({ resourceName: name }, 'freezeguard: resource name resolved');
        this.#tracker.reclassify(this.#rules());
        this.#evaluate();
      },
      (err: unknown) => {
        if (!this.#running) return;
        this.#resourceNameError = `resource name unknown: ${toError(err).message}`;
        if (attempt === 0) {
          this.logger.warn(
            { err: toError(err) },
            'freezeguard: cannot read this VM name; acting on no event until it is known',
          );
        }
        const delay = Math.min(30_000, 1000 * 2 ** attempt);
        this.#nameTimer = this.timers.setTimeout(() => this.#resolveName(attempt + 1), delay);
      },
    );
  }

  #onDocument(document: ScheduledEventsDocument): void {
    if (!this.#running) return;
    const now = this.clock.now();
    this.#lastDocumentAt = now;
    const problems = document.Problems ?? [];
    if (problems.join('\n') !== this.#documentProblems.join('\n') && problems.length > 0) {
      this.#warn(
        { problems },
        `freezeguard: ${problems.length} entr${problems.length === 1 ? 'y' : 'ies'} of the maintenance document could not be read; acting on the others`,
      );
    }
    this.#documentProblems = problems;
    const changes = this.#tracker.apply(document, now, this.#rules());
    for (const t of changes.added) {
      this.logger.info(
        {
          eventId: t.id,
          eventType: t.event.EventType,
          eventStatus: t.event.EventStatus,
          notBefore: t.event.NotBefore,
          relevant: t.relevant,
          reason: t.reason,
        },
        'freezeguard: maintenance event seen',
      );
    }
    for (const t of changes.ended) {
      this.#memory.ended(t.id);
      this.logger.info(
        { eventId: t.id, eventType: t.event.EventType, eventStatus: t.event.EventStatus },
        t.present
          ? `freezeguard: maintenance event ended (${t.event.EventStatus})`
          : 'freezeguard: maintenance event left the document',
      );
    }
    const inCycle = new Set(this.#cycle?.ids ?? []);
    this.#tracker.prune((id) => inCycle.has(id));
    if (changes.incarnationChanged) this.#emitter.emit('event', document);
    this.#evaluate();
  }

  #onPause(pause: PauseInfo): void {
    this.#lastPause = pause;
    this.#emitter.emit('pause', pause);
    if (pause.signal === 'stall') {
      this.logger.info(
        { ...pause },
        'freezeguard: event-loop stall (only the main thread stopped); not a freeze',
      );
      return;
    }
    this.logger.info({ ...pause }, 'freezeguard: process pause detected');
    this.#memory.recordPause({
      signal: pause.signal,
      detectedAt: pause.detectedAt,
      pausedMs: pause.pausedMs,
      clockStepMs: pause.clockStepMs,
      seq: this.#tracker.seq,
    });
    if (this.#cycle) this.#evaluate();
  }

  #onFleetChange(): void {
    const cycle = this.#cycle;
    if (cycle && cycle.slot === 'denied' && !cycle.resuming) this.#askSlot(cycle);
    else this.#evaluate();
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

  /** Asks the policy, then applies its decision. Idempotent. */
  #evaluate(): void {
    if (!this.#running) return;
    const now = this.clock.now();
    this.#memory.forget(now);
    const cycle = this.#cycle;
    const local = this.#localEvent;
    const d: Decision = decide({
      now,
      options: {
        leadTimeMs: this.#o.leadTimeMs,
        maxHoldMs: this.#o.maxHoldMs,
        resumeWhen: this.#o.resumeWhen,
        approve: this.#o.approve,
        canApprove: this.#source.supportsApproval !== false,
        drainDelayMs: this.#o.drainDelayMs,
      },
      resourceName: this.#resourceName,
      events: this.#tracker.list(),
      handled: this.#memory.handled,
      recent: this.#memory.recent,
      cycle: cycle
        ? {
            eventIds: cycle.ids.filter((id) => id !== local?.EventId),
            startedAt: cycle.startedAt,
            prepared: cycle.prepared,
            prepareFailed: cycle.run.failed,
            resuming: cycle.resuming,
            approvalsSent: this.#approvals.sent,
            local: cycle.local,
            drainedAt: cycle.drainedAt,
          }
        : null,
      pauses: this.#memory.pauses,
      lastDocumentAt: this.#lastDocumentAt,
      seq: this.#tracker.seq,
    });
    for (const mark of d.markHandled) {
      this.#memory.handled.set(mark.id, mark);
      this.logger.info(
        { eventId: mark.id },
        'freezeguard: a new EventId for the maintenance that just ran; not draining again',
      );
    }
    if (cycle && !cycle.resuming) {
      for (const { id, why } of d.release) {
        cycle.ids.splice(cycle.ids.indexOf(id), 1);
        this.logger.info({ eventId: id }, `freezeguard: event leaves the cycle: ${why}`);
      }
    }
    if (d.admit.length > 0) {
      if (!cycle) this.#beginCycle([...d.admit], now, false);
      else if (!cycle.resuming) {
        cycle.ids.push(...d.admit);
        this.logger.info({ eventIds: d.admit }, 'freezeguard: event joins the current cycle');
      }
    }
    if (cycle && d.resume) {
      if (d.resume.outcome === 'failsafe') {
        cycle.failsafe = true;
        this.#warn({ eventIds: cycle.ids }, `freezeguard: resuming anyway: ${d.resume.why}`);
      }
      void this.#resume(cycle, d.resume.outcome, d.resume.why, false);
      return;
    }
    if (cycle && !cycle.resuming) {
      for (const id of d.approve) this.#approve(cycle, id);
    }
    this.#setState(d.state);
    if (d.state === 'shutting-down' && cycle) this.#announceShutdown(cycle);
    this.#wake(d.wakeAt);
  }

  #beginCycle(ids: string[], now: number, local: boolean): Cycle {
    const events = ids.map((id) => this.#tracker.get(id)?.event).filter((e) => e !== undefined);
    const notBefores = events.map((e) => e.notBefore).filter((n): n is number => n !== null);
    const plan = planPrepare(now, notBefores.length > 0 ? Math.min(...notBefores) : null, this.#o);
    const cycle = newCycle({
      ids,
      now,
      local,
      plan,
      pendingSlot: this.#fleet !== undefined && !local,
      events: (c) => this.#cycleEvents(c),
      logger: this.logger,
    });
    this.#cycle = cycle;
    this.logger.info(
      { eventIds: ids, eventType: events[0]?.EventType ?? 'Terminate' },
      local ? 'freezeguard: preparing for shutdown' : 'freezeguard: preparing for maintenance',
    );
    if (plan.compressed.length > 0) {
      // Expected with a short notice (Preempt: 30 s): worth keeping in status(), not a warning.
      this.#note(
        { eventIds: ids, compressed: plan.compressed },
        `freezeguard: short notice, prepare compressed to end before NotBefore: ${plan.compressed.join('; ')}`,
      );
    }
    this.#setState('preparing');
    cycle.preparing = (async () => {
      if (cycle.slot === 'pending') await this.#askSlot(cycle);
      await this.#participants.prepareAll(cycle.run);
    })()
      .catch((err) =>
        this.logger.error({ err: toError(err) }, 'freezeguard: prepare failed unexpectedly'),
      )
      .finally(() => {
        cycle.prepared = true;
        if (cycle.run.failed && !cycle.resuming) {
          this.#warn(
            { eventIds: cycle.ids },
            'freezeguard: a participant failed or overran its prepare; this instance will not approve the event',
          );
        }
        if (this.#cycle === cycle && !cycle.resuming) this.#evaluate();
      });
    return cycle;
  }

  #cycleEvents(cycle: Cycle): ScheduledEvent[] {
    const out: ScheduledEvent[] = [];
    for (const id of cycle.ids) {
      if (id === this.#localEvent?.EventId) out.push(this.#localEvent);
      else {
        const e = this.#tracker.get(id)?.event;
        if (e) out.push(e);
      }
    }
    return out;
  }

  /** Asks the fleet for a drain slot; without one the member keeps serving. */
  async #askSlot(cycle: Cycle): Promise<void> {
    const gate = this.#gate;
    if (!gate) return;
    const answer = await gate.acquire(cycle.ids);
    if (this.#cycle !== cycle || cycle.resuming) {
      if (answer === 'granted') gate.release(true, () => true);
      return;
    }
    const was = cycle.slot;
    cycle.slot = answer;
    const draining = answer !== 'denied';
    if (answer === 'unavailable' && was !== 'unavailable') {
      this.#warn(
        {},
        'freezeguard: fleet unavailable; draining without coordination (solo behaviour)',
      );
    }
    if (!draining) {
      if (was !== 'denied') {
        this.#warn(
          { eventIds: cycle.ids },
          'freezeguard: no drain slot (the fleet is at minInRotation); keeps serving, still pauses work and flushes data',
        );
      }
      cycle.draining = false;
      cycle.drainedAt = null;
      gate.retry(() => {
        if (this.#cycle === cycle && !cycle.resuming && this.#running) void this.#askSlot(cycle);
      });
      return;
    }
    const late = was === 'denied';
    cycle.draining = true;
    if (late) {
      cycle.drainedAt = this.clock.now();
      this.logger.info({ eventIds: cycle.ids }, 'freezeguard: drain slot granted; draining now');
      for (const p of this.#participants.list())
        if (p.phase === 'traffic') void this.#participants.prepareOne(p, cycle.run);
      this.#emitter.emit('state', this.#state, this.#state);
    }
  }

  #approve(cycle: Cycle, id: string): void {
    const t = this.#tracker.get(id);
    if (!t || this.#approvals.sent.has(id)) return;
    if (this.#o.approve === 'fleet') {
      // Fleet unreachable: solo behaviour, approve only an event that lists this VM alone.
      if (cycle.slot === 'unavailable') {
        if (t.event.Resources.length === 1) this.#approvals.send(t.event);
        return;
      }
      if (!cycle.draining || cycle.fleetReported.has(id)) return;
      cycle.fleetReported.add(id);
      void this.#gate!.prepared(t.event).then((last) => {
        if (last && this.#cycle === cycle && !cycle.resuming) this.#approvals.send(t.event);
      });
      return;
    }
    this.#approvals.send(t.event);
  }

  #announceShutdown(cycle: Cycle): void {
    if (cycle.shutdownAnnounced) return;
    cycle.shutdownAnnounced = true;
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
      pausedMs: this.#memory.pausedSince(cycle.startedAt).pausedMs,
    });
  }

  #resume(
    cycle: Cycle,
    outcome: Exclude<CycleOutcome, 'shutdown'>,
    why: string,
    stopping: boolean,
  ): Promise<void> {
    cycle.resuming = true;
    this.#resumed = this.#runResume(cycle, outcome, why, stopping);
    return this.#resumed;
  }

  async #runResume(
    cycle: Cycle,
    outcome: Exclude<CycleOutcome, 'shutdown'>,
    why: string,
    stopping: boolean,
  ): Promise<void> {
    this.#gate?.cancelRetry();
    cycle.controller.abort(
      stopping
        ? new FreezeguardError('ERR_STOPPED', 'guard stopped: resuming what was prepared')
        : new FreezeguardError('ERR_CANCELLED', `cycle over: ${why}`),
    );
    this.#clearWake();
    if (!stopping) this.#setState('resuming');
    const events = this.#cycleEvents(cycle);
    const cancelled = outcome === 'cancelled';
    const { pausedMs, clockStepMs } = this.#memory.pausedSince(cycle.startedAt);
    try {
      await cycle.preparing;
      await this.#participants.resumeAll(cycle.run.invoked, (_p, deadline, signal) => ({
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
    // Given back once the load balancer has had drainDelayMs to see this instance healthy.
    if (cycle.slot === 'granted') this.#gate?.release(stopping, () => !this.#cycle);
    if (this.#cycle !== cycle) return;
    const now = this.clock.now();
    const tracked = events.map((e) => this.#tracker.get(e.EventId)).filter((t) => t !== undefined);
    this.#memory.cycleOver(tracked, outcome, now, this.#tracker.seq);
    this.#cycle = null;
    this.#tracker.prune(() => false);
    const failsafe = outcome === 'failsafe';
    this.logger.info({ cancelled, pausedMs, failsafe, why }, 'freezeguard: resumed');
    this.#emitter.emit('resumed', { cancelled, pausedMs, failsafe });
    this.#emitter.emit('cycle', {
      outcome,
      eventIds: events.map((e) => e.EventId),
      eventType: events[0]?.EventType ?? 'Freeze',
      startedAt: cycle.startedAt,
      endedAt: now,
      outOfRotationMs: cycle.drainedAt === null ? 0 : now - cycle.drainedAt,
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
