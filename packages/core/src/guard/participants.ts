import { assertOption, errorSummary, FreezeguardError, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import { type Clock, sleep, type TimerHandle, type Timers } from '../time/clock.js';
import { leastDrainState } from './drain.js';
import type { PreparePlan } from './prepare-plan.js';
import {
  type CallOutcome,
  type Participant,
  type ParticipantCallInfo,
  PHASES,
  type Phase,
  type PrepareContext,
  type ResumeContext,
} from './types.js';

/** What the registry needs from its guard. */
export interface ParticipantDeps {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly logger: Logger;
  readonly prepareTimeoutMs: number;
  readonly resumeTimeoutMs: number;
  /** Every finished call, for the `participant` guard event. */
  onCall(info: ParticipantCallInfo): void;
  /** A warning worth keeping in `status()`. */
  warn(facts: object, message: string): void;
  /** Observe mode: nobody is ever prepared (so nobody is resumed). */
  readonly observe?: boolean;
}

/** One cycle's bookkeeping of who was prepared. */
export interface PrepareRun {
  readonly signal: AbortSignal;
  /** Replaced when a late drain slot starts the traffic phase after the plan was made. */
  plan: PreparePlan;
  /** Participants whose prepare was called: exactly these are resumed. */
  readonly invoked: Set<Participant>;
  /** Builds the context of one prepare call. */
  context(p: Participant, deadline: number, signal: AbortSignal): PrepareContext;
  /** False while a fleet member has no drain slot: `traffic` participants are not called. */
  draining(): boolean;
  /** A participant failed or overran its prepare. */
  failed(): void;
}

/**
 * The participant registry: phase order, and every call isolated (a throw, a rejection
 * or an overrun is recorded and logged, never propagated), timed, and bounded by its
 * deadline with an `AbortSignal`.
 *
 * @example
 * ```ts
 * const registry = new Participants(deps);
 * const remove = registry.add({ name: 'queue', phase: 'work', prepare, resume });
 * ```
 */
export class Participants {
  readonly #deps: ParticipantDeps;
  readonly #list = new Set<Participant>();
  readonly #records = new Map<
    Participant,
    { prepare: CallOutcome | null; resume: CallOutcome | null }
  >();

  constructor(deps: ParticipantDeps) {
    this.#deps = deps;
  }

  /** Validates and registers; returns the function that unregisters. */
  add(participant: Participant): () => void {
    assertOption(
      typeof participant === 'object' &&
        participant !== null &&
        typeof participant.name === 'string' &&
        participant.name !== '',
      'participant.name',
      'must be a non-empty string',
      participant?.name,
    );
    assertOption(
      PHASES.includes(participant.phase),
      'participant.phase',
      `must be one of ${PHASES.join(', ')}`,
      participant.phase,
    );
    for (const key of ['prepare', 'resume'] as const) {
      const fn = participant[key];
      assertOption(
        fn === undefined || typeof fn === 'function',
        `participant.${key}`,
        'must be a function',
        fn,
      );
    }
    for (const key of ['prepareTimeoutMs', 'resumeTimeoutMs'] as const) {
      const ms = participant[key];
      assertOption(
        ms === undefined || (Number.isFinite(ms) && ms > 0),
        `participant.${key}`,
        'must be a number > 0',
        ms,
      );
    }
    this.#list.add(participant);
    this.#records.set(participant, { prepare: null, resume: null });
    return () => {
      this.#list.delete(participant);
      this.#records.delete(participant);
    };
  }

  has(p: Participant): boolean {
    return this.#list.has(p);
  }

  list(): readonly Participant[] {
    return [...this.#list];
  }

  record(p: Participant): { prepare: CallOutcome | null; resume: CallOutcome | null } {
    return this.#records.get(p) ?? { prepare: null, resume: null };
  }

  /**
   * Runs the phases in order, the participants of one phase concurrently; waits for
   * `plan.drainUntil` between `traffic` and `work` while draining, so the load balancer
   * sees the failing probe before anything stops working — unless the traffic
   * participants confirmed the balancers let go already.
   */
  async prepareAll(run: PrepareRun): Promise<void> {
    if (this.#deps.observe) return;
    for (const phase of PHASES) {
      if (run.signal.aborted) return;
      if (phase === 'traffic' && !run.draining()) continue;
      await Promise.all(
        this.list()
          .filter((p) => p.phase === phase)
          .map((p) => this.prepareOne(p, run)),
      );
      if (phase === 'traffic' && leastDrainState(this.list()) !== 'confirmed') {
        const remaining = run.plan.drainUntil - this.#deps.clock.now();
        if (remaining > 0) await sleep(this.#deps.timers, remaining, run.signal).catch(() => {});
      }
    }
  }

  /** Prepares one participant for `run` (once per cycle); records the outcome. */
  async prepareOne(p: Participant, run: PrepareRun): Promise<void> {
    if (this.#deps.observe || !this.#list.has(p) || run.invoked.has(p)) return;
    if (p.phase === 'traffic' && !run.draining()) return;
    run.invoked.add(p);
    const now = this.#deps.clock.now();
    const own = p.prepareTimeoutMs ?? this.#deps.prepareTimeoutMs;
    // The notice budget caps the phase; a participant always gets a moment.
    const timeoutMs = Math.max(100, Math.min(own, run.plan.phaseDeadline[p.phase] - now));
    const controller = linkedController(run.signal);
    const ctx = run.context(p, now + timeoutMs, controller.signal);
    const outcome = await this.#call(p, 'prepare', () => p.prepare?.(ctx), timeoutMs, controller);
    const record = this.#records.get(p);
    if (record) record.prepare = outcome;
    if (outcome.outcome !== 'ok') run.failed();
  }

  /** Resumes `invoked` in reverse phase order; each call isolated and timed. */
  async resumeAll(
    invoked: ReadonlySet<Participant>,
    context: (p: Participant, deadline: number, signal: AbortSignal) => ResumeContext,
  ): Promise<void> {
    for (const phase of [...PHASES].reverse() as Phase[]) {
      await Promise.all(
        [...invoked]
          .filter((p) => p.phase === phase && this.#list.has(p))
          .map(async (p) => {
            const timeoutMs = p.resumeTimeoutMs ?? this.#deps.resumeTimeoutMs;
            const controller = new AbortController();
            const ctx = context(p, this.#deps.clock.now() + timeoutMs, controller.signal);
            const outcome = await this.#call(
              p,
              'resume',
              () => p.resume?.(ctx),
              timeoutMs,
              controller,
            );
            const record = this.#records.get(p);
            if (record) record.resume = outcome;
          }),
      );
    }
  }

  async #call(
    p: Participant,
    step: 'prepare' | 'resume',
    fn: () => unknown,
    timeoutMs: number,
    controller: AbortController,
  ): Promise<CallOutcome> {
    const { clock, timers, logger } = this.#deps;
    const startedAt = clock.now();
    const t0 = clock.monotonic();
    let timer: TimerHandle | null = null;
    let thrown: Error | undefined;
    const result = await new Promise<Omit<CallOutcome, 'startedAt' | 'durationMs'>>((resolve) => {
      timer = timers.setTimeout(() => {
        const error = new FreezeguardError(
          'ERR_PARTICIPANT_TIMEOUT',
          `participant ${p.name} did not finish ${step} within ${timeoutMs} ms`,
          { details: { participant: p.name, step, timeoutMs } },
        );
        thrown = error;
        controller.abort(error);
        resolve({ outcome: 'timeout', error: error.toJSON() });
      }, timeoutMs);
      // A participant may throw synchronously, return a value or a promise: all isolated here.
      Promise.resolve()
        .then(fn)
        .then(
          () => resolve({ outcome: 'ok' }),
          (err: unknown) => {
            const error = new FreezeguardError(
              'ERR_PARTICIPANT_FAILED',
              `participant ${p.name} failed its ${step}: ${toError(err).message}`,
              { cause: err, details: { participant: p.name, step } },
            );
            thrown = error;
            // status() shows what the participant threw; the log gets the wrapped error.
            resolve({ outcome: 'error', error: errorSummary(err) });
          },
        );
    });
    if (timer !== null) timers.clearTimeout(timer);
    const outcome: CallOutcome = {
      ...result,
      startedAt,
      durationMs: Math.round(clock.monotonic() - t0),
    };
    this.#deps.onCall({ ...outcome, name: p.name, phase: p.phase, step });
    const facts = { participant: p.name, phase: p.phase, durationMs: outcome.durationMs };
    if (outcome.outcome === 'ok') logger.debug(facts, `freezeguard: ${step} ${p.name} done`);
    else if (outcome.outcome === 'timeout')
      this.#deps.warn(
        { ...facts, err: thrown },
        `freezeguard: ${step} of ${p.name} overran ${timeoutMs} ms; skipped`,
      );
    else
      logger.error({ ...facts, err: thrown }, `freezeguard: ${step} of ${p.name} failed; skipped`);
    return outcome;
  }
}

/** A controller aborted with its parent's reason. */
export function linkedController(parent: AbortSignal): AbortController {
  const controller = new AbortController();
  if (parent.aborted) controller.abort(parent.reason);
  else {
    const onAbort = () => controller.abort(parent.reason);
    parent.addEventListener('abort', onAbort, { once: true });
    // Drop the link once the child is done so a long-lived parent keeps no listeners.
    controller.signal.addEventListener(
      'abort',
      () => parent.removeEventListener('abort', onAbort),
      { once: true },
    );
  }
  return controller;
}
