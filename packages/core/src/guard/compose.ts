import { assertOption } from '../errors.js';
import type { MaintenanceEvent } from '../event.js';
import type { FleetCoordinator } from '../fleet.js';
import { localCoordinator } from '../local/coordinator.js';
import { createConsoleLogger, type Logger } from '../logger.js';
import type { MaintenanceSource } from '../sources/source.js';
import { type Clock, systemClock, systemTimers, type Timers } from '../time/clock.js';
import { createPauseDetector, type PauseDetector } from '../time/pause.js';
import { Approvals } from './approvals.js';
import type { Cycle } from './cycle.js';
import { type Active, CycleRunner } from './cycle-run.js';
import { leastDrainState } from './drain.js';
import { FleetGate } from './fleet-gate.js';
import { GuardListeners } from './listeners.js';
import { Observations } from './observations.js';
import { type ResolvedOptions, resolveGuardOptions } from './options.js';
import { Participants } from './participants.js';
import { type Decision, decide, type PolicyOptions, policyOptions } from './policy.js';
import { ResourceName } from './resource-name.js';
import type { RelevanceRules } from './tracker.js';
import type { ApprovalPolicy, GuardOptions } from './types.js';

/** What a guard is made of; {@link composeGuard} builds it from the options. */
export interface GuardParts {
  readonly o: ResolvedOptions;
  readonly policy: PolicyOptions;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly timers: Timers;
  /** The source, wrapped by the fleet when there is one (one poller per VM). */
  readonly source: MaintenanceSource;
  readonly fleet: FleetCoordinator | undefined;
  readonly gate: FleetGate | undefined;
  readonly emitter: GuardListeners;
  readonly seen: Observations;
  readonly name: ResourceName;
  readonly approvals: Approvals;
  readonly participants: Participants;
  readonly runner: CycleRunner;
  readonly detector: PauseDetector;
}

/** What the parts call back into their guard. */
export interface GuardHooks {
  /** Decide again. */
  evaluate(): void;
  /** The open cycle, if any. */
  active(): Active | null;
  /** The event of `guard.shutdown()`, once called. */
  localEvent(): MaintenanceEvent | null;
}

/**
 * Checks the options and builds the parts, wired to `hooks`: every observation (a
 * document's VM name, a pause, an approval, a fleet answer) ends in `hooks.evaluate()`.
 *
 * @example
 * ```ts
 * const parts = composeGuard({ source, approve: 'solo' }, { evaluate, active, localEvent });
 * ```
 */
export function composeGuard(options: GuardOptions, hooks: GuardHooks): GuardParts {
  const o = resolveGuardOptions(options);
  assertOption(
    options.source !== undefined,
    'source',
    'must be a maintenance source (createGuard() from @freezeguard/core supplies the default)',
    options.source,
  );
  const logger = options.logger ?? createConsoleLogger();
  // Observing: decisions run, nothing is done: no participant called, no slot, no approval.
  const observe = o.mode === 'observe';
  const clock = options.clock ?? systemClock;
  const timers = options.timers ?? systemTimers;
  // A freeze stops the whole VM: by default the guarded processes of a VM find each other,
  // so they poll once and approve once, after the last of them prepared.
  const fleet =
    options.fleet ??
    (o.local && o.mode !== 'disabled' && options.source.resolveVmId
      ? localCoordinator()
      : undefined);
  const seen = new Observations(logger, clock);
  const warn = (facts: object, message: string) => seen.warn(facts, message);
  const gate =
    fleet && o.mode === 'active'
      ? new FleetGate(
          fleet,
          {
            clock,
            timers,
            logger,
            warn,
            current: (a) => hooks.active() === a && !a.cycle.resuming,
            evaluate: () => hooks.evaluate(),
          },
          o.drainDelayMs,
        )
      : undefined;
  const source = fleet ? fleet.wrapSource(options.source) : options.source;
  const emitter = new GuardListeners(() => logger);
  const name: ResourceName = new ResourceName(o.resourceName, {
    source,
    timers,
    logger,
    resolved: () => {
      seen.tracker.reclassify(relevanceRules(name, o));
      hooks.evaluate();
    },
  });
  const approvals = new Approvals(source, logger, observe, {
    approved: (event) => {
      emitter.emit('approved', { eventId: event.id, event });
      hooks.evaluate();
    },
    failed: (error) => emitter.emit('error', error),
  });
  const participants = new Participants({
    clock,
    timers,
    logger,
    prepareTimeoutMs: o.prepareTimeoutMs,
    resumeTimeoutMs: o.resumeTimeoutMs,
    onCall: (info) => emitter.emit('participant', info),
    warn,
    observe,
  });
  const runner = new CycleRunner({
    participants,
    logger,
    seen,
    drainDelayMs: o.drainDelayMs,
    prepareTimeoutMs: o.prepareTimeoutMs,
    localEvent: () => hooks.localEvent(),
  });
  const detector = createPauseDetector({
    clock,
    timers,
    thresholdMs: o.pauseThresholdMs,
    tickMs: idleTickMs(o),
    // The second observer (a worker thread, ~9 MiB) only runs once an event is known.
    active: false,
    onPause: (pause) => {
      seen.lastPause = pause;
      emitter.emit('pause', pause);
      if (seen.pause(pause, hooks.active() !== null) && hooks.active()) hooks.evaluate();
    },
  });
  const policyBase = { ...o, approve: approvalPolicy(o.approve, observe, fleet) };
  const policy = policyOptions(policyBase, source, gate !== undefined);
  return {
    ...{ o, policy, logger, clock, timers, source, fleet, gate, emitter, seen, name },
    ...{ approvals, participants, runner, detector },
  };
}

/**
 * The pure {@link decide} over what the parts observed at `now`: the one place the
 * guard's state becomes the policy's input.
 *
 * @example
 * ```ts
 * const d = decideWith(parts, clock.now(), active?.cycle ?? null);
 * ```
 */
export function decideWith(p: GuardParts, now: number, cycle: Cycle | null): Decision {
  const { tracker, memory, lastDocumentAt } = p.seen;
  return decide({
    now,
    options: p.policy,
    resourceName: p.name.name,
    events: tracker.list(),
    handled: memory.handled,
    recent: memory.recent,
    cycle,
    approvalsSent: p.approvals.decided,
    pauses: memory.pauses,
    lastDocumentAt,
    seq: tracker.seq,
    // Observing, no adapter drains: only the fixed drainDelayMs can stand for the balancers.
    drain: p.o.mode === 'observe' ? 'none' : leastDrainState(p.participants.list()),
  });
}

/**
 * The approval rule the lifecycle runs. An observer cannot predict a fleet's approval (it
 * depends on the other members), so it shows none. `solo` beside the other processes of
 * the VM goes through them: the VM is approved once, by one process, after all prepared
 * (the local coordinator, like `solo`, never approves an event that lists other VMs).
 *
 * @example
 * ```ts
 * approvalPolicy('solo', false, localCoordinator()); // 'fleet'
 * ```
 */
export function approvalPolicy(
  approve: ApprovalPolicy,
  observe: boolean,
  fleet: Pick<FleetCoordinator, 'scope'> | undefined,
): ApprovalPolicy {
  if (observe) return approve === 'fleet' ? 'never' : approve;
  return approve === 'solo' && fleet?.scope === 'vm' ? 'fleet' : approve;
}

/**
 * What makes an event this VM's, with the name known so far.
 *
 * @example
 * ```ts
 * tracker.reclassify(relevanceRules(name, options));
 * ```
 */
export function relevanceRules(
  name: Pick<ResourceName, 'name' | 'error'>,
  o: Pick<ResolvedOptions, 'eventTypes'>,
): RelevanceRules {
  return { resourceName: name.name, resourceNameError: name.error, eventTypes: o.eventTypes };
}

/**
 * The detector's tick while idle. With nothing announced a pause changes nothing but the
 * report, so the detector looks less often: an idle guard must cost next to nothing.
 *
 * @example
 * ```ts
 * idleTickMs({ tickIntervalMs: 100, pauseThresholdMs: 1000 }); // 400
 * ```
 */
export function idleTickMs(o: Pick<ResolvedOptions, 'tickIntervalMs' | 'pauseThresholdMs'>) {
  return Math.max(o.tickIntervalMs, Math.min(o.pauseThresholdMs / 2, o.tickIntervalMs * 4));
}
