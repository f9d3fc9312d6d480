import type { FleetContext } from '../fleet.js';
import type { SourceContext } from '../sources/source.js';
import { type GuardParts, relevanceRules } from './compose.js';
import { type Active, step } from './cycle-run.js';
import { allHealthy } from './drain.js';
import type { GuardState } from './types.js';

/** What the contexts handed to the fleet and the source read of their guard. */
export interface WiringHooks {
  running(): boolean;
  state(): GuardState;
  isReady(): boolean;
  active(): Active | null;
  /** A good answer arrived: the source is not blind. */
  answered(): void;
  evaluate(): void;
}

/**
 * The context a guard starts its fleet with: the member view it heartbeats (serving means
 * ready and every readiness check passing) and what a change in the fleet does (the open
 * cycle hears of it, then the guard decides again).
 *
 * @example
 * ```ts
 * parts.fleet?.start(fleetContext(parts, hooks));
 * ```
 */
export function fleetContext(p: GuardParts, h: WiringHooks): FleetContext {
  return {
    logger: p.logger,
    clock: p.clock,
    timers: p.timers,
    member: () => ({
      state: h.state(),
      ready: h.isReady() && allHealthy(p.participants.list()),
      resourceName: p.name.name,
      observing: p.o.mode === 'observe',
    }),
    onChange: () => {
      const a = h.active();
      if (a && !a.cycle.resuming) step(a, { k: 'fleet-changed', now: p.clock.now() });
      h.evaluate();
    },
  };
}

/**
 * The context a guard starts its source with: every document is recorded (and emitted as
 * `event` when it says something new), then the guard decides; errors reach listeners
 * once per failure streak; time references feed the pause detector.
 *
 * @example
 * ```ts
 * parts.source.start(sourceContext(parts, hooks));
 * ```
 */
export function sourceContext(p: GuardParts, h: WiringHooks): SourceContext {
  return {
    logger: p.logger,
    clock: p.clock,
    timers: p.timers,
    onDocument: (document) => {
      if (!h.running()) return;
      h.answered();
      const inCycle = new Set(h.active()?.cycle.ids ?? []);
      if (p.seen.document(document, p.clock.now(), relevanceRules(p.name, p.o), inCycle))
        p.emitter.emit('event', document);
      h.evaluate();
    },
    onError: (error, streak) => {
      // Once per failure streak, like the log: a flapping IMDS must not flood listeners.
      if (streak === 1) p.emitter.emit('error', error);
    },
    onTimeReference: (sample) => p.detector.reference(sample),
  };
}
