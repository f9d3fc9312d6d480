/**
 * Test helpers for code that uses a guard: a fake clock that can simulate a process stop
 * or a Hyper-V pause, and an in-memory maintenance source. Import from
 * `@freezeguard/core/testing`.
 *
 * @module
 */

import { parseScheduledEventsDocument, type ScheduledEventsDocument } from './document.js';
import {
  createGuardWithSource,
  type Guard,
  type GuardOptions,
  type GuardState,
  type Participant,
} from './guard/guard.js';
import type { Logger } from './logger.js';
import type { MaintenanceSource, SourceContext, SourceHealth } from './sources/source.js';
import type { Clock, TimerHandle, Timers } from './time/clock.js';

/** One record a {@link recordingLogger} kept. */
export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly msg: string;
  readonly obj?: object;
}

/**
 * A pino-compatible logger that keeps every record, for asserting on what was logged.
 *
 * @example
 * ```ts
 * const logger = recordingLogger();
 * createGuard({ logger });
 * expect(logger.lines.filter((l) => l.level === 'warn')).toHaveLength(1);
 * ```
 */
export function recordingLogger(): Logger & { readonly lines: LogLine[] } {
  const lines: LogLine[] = [];
  const make = (level: LogLine['level']) => (a: object | string, b?: string) => {
    lines.push(typeof a === 'string' ? { level, msg: a } : { level, msg: b ?? '', obj: a });
  };
  return {
    lines,
    debug: make('debug'),
    info: make('info'),
    warn: make('warn'),
    error: make('error'),
  };
}

interface FakeTimer {
  readonly id: number;
  at: number;
  readonly fn: () => void;
}

/**
 * A clock and timers under the test's control. Timers run on the monotonic clock, as
 * Node's do. `stop(ms)` models SIGSTOP (both clocks jump, late timers fire at once);
 * `hypervPause(ms)` models a Hyper-V pause (only the wall clock is stepped).
 *
 * @example
 * ```ts
 * const clock = new FakeClock();
 * const guard = createGuard({ clock, timers: clock, source, resourceName: 'vm-1' });
 * await clock.advance(1000);
 * await clock.stop(5000);
 * ```
 */
export class FakeClock implements Clock, Timers {
  #wall: number;
  #mono: number;
  #seq = 0;
  #timers: FakeTimer[] = [];

  readonly #flushRounds: number;

  /**
   * `flushRounds`: how many macrotask turns `flush()` lets pass (default 10). Promise
   * chains settle within one; more are for code that waits on real I/O callbacks. Model
   * tests running thousands of sequences use 1.
   */
  constructor(
    options: {
      readonly now?: number;
      readonly monotonic?: number;
      readonly flushRounds?: number;
    } = {},
  ) {
    this.#wall = options.now ?? Date.UTC(2026, 0, 1, 0, 0, 0);
    this.#mono = options.monotonic ?? 1000;
    this.#flushRounds = options.flushRounds ?? 10;
  }

  now(): number {
    return this.#wall;
  }

  monotonic(): number {
    return this.#mono;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: ++this.#seq, at: this.#mono + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Moves both clocks forward by `ms`, firing timers in order and settling promises between them. */
  async advance(ms: number): Promise<void> {
    const target = this.#mono + ms;
    await this.flush();
    for (;;) {
      const next = this.#next();
      if (!next || next.at > target) break;
      this.#wall += next.at - this.#mono;
      this.#mono = next.at;
      this.#fire(next);
      await this.flush();
    }
    this.#wall += target - this.#mono;
    this.#mono = target;
    await this.flush();
  }

  /** Like SIGSTOP for `ms`: both clocks jump and every overdue timer fires late, once. */
  async stop(ms: number): Promise<void> {
    this.#wall += ms;
    this.#mono += ms;
    await this.#fireDue();
  }

  /** Like a Hyper-V pause: the monotonic clock stood still, the wall clock is stepped. */
  async hypervPause(ms: number): Promise<void> {
    this.#wall += ms;
    await this.flush();
  }

  /** Steps only the wall clock (an NTP step, an admin's `date -s`). */
  setWall(now: number): void {
    this.#wall = now;
  }

  /** Lets pending promise chains run. */
  async flush(): Promise<void> {
    for (let i = 0; i < this.#flushRounds; i++)
      await new Promise<void>((resolve) => setImmediate(resolve));
  }

  async #fireDue(): Promise<void> {
    await this.flush();
    for (;;) {
      const next = this.#next();
      if (!next || next.at > this.#mono) break;
      this.#fire(next);
      await this.flush();
    }
  }

  #next(): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.#timers)
      if (!best || t.at < best.at || (t.at === best.at && t.id < best.id)) best = t;
    return best;
  }

  #fire(timer: FakeTimer): void {
    this.#timers = this.#timers.filter((t) => t !== timer);
    timer.fn();
  }
}

/**
 * A {@link MaintenanceSource} fed by the test: `publish()` a document (object or JSON
 * text), read back the approvals. For unit tests of code around a guard; the real IMDS
 * protocol is exercised against `@freezeguard/simulator`.
 *
 * @example
 * ```ts
 * const source = new MemorySource({ resourceName: 'vm-1' });
 * const guard = createGuard({ source, clock, timers: clock });
 * await guard.start();
 * source.publish({ DocumentIncarnation: 1, Events: [] });
 * ```
 */
export class MemorySource implements MaintenanceSource {
  readonly kind = 'memory';
  readonly approvals: string[] = [];
  #ctx: SourceContext | null = null;
  #resourceName: string | undefined;
  #nameError: Error | null;
  #failures = 0;
  #incarnation = 1000;
  #lastSuccessAt: number | null = null;

  constructor(options: { readonly resourceName?: string; readonly nameError?: Error } = {}) {
    this.#resourceName = options.resourceName;
    this.#nameError = options.nameError ?? null;
  }

  get started(): boolean {
    return this.#ctx !== null;
  }

  start(context: SourceContext): void {
    this.#ctx = context;
  }

  async stop(): Promise<void> {
    this.#ctx = null;
  }

  /** Makes `resolveResourceName()` answer `name` from now on. */
  setResourceName(name: string | undefined, error: Error | null = null): void {
    this.#resourceName = name;
    this.#nameError = error;
  }

  async resolveResourceName(): Promise<string | undefined> {
    if (this.#nameError) throw this.#nameError;
    return this.#resourceName;
  }

  async approve(eventId: string): Promise<void> {
    this.approvals.push(eventId);
  }

  /**
   * Publishes a document listing `events`, each filled in for this VM: a Started Freeze
   * unless told otherwise (`NotBefore` 15 minutes ahead for a Scheduled one). The
   * incarnation goes up by one; `announce()` with no event empties the document.
   *
   * @example
   * ```ts
   * source.announce({ EventId: 'E1' });                              // a Freeze under way
   * source.announce({ EventType: 'Reboot', EventStatus: 'Scheduled' }); // a reboot ahead
   * source.announce();                                               // it is over
   * ```
   */
  announce(...events: Record<string, unknown>[]): ScheduledEventsDocument {
    const now = this.#ctx?.clock.now() ?? Date.now();
    return this.publish({
      DocumentIncarnation: ++this.#incarnation,
      Events: events.map((over, i) => {
        const status = over.EventStatus ?? 'Started';
        return {
          EventId: `E-${this.#incarnation}-${i}`,
          EventType: 'Freeze',
          EventStatus: status,
          ResourceType: 'VirtualMachine',
          Resources: [this.#resourceName ?? 'vm-1'],
          NotBefore: status === 'Started' ? '' : new Date(now + 15 * 60_000).toUTCString(),
          DurationInSeconds: 5,
          ...over,
        };
      }),
    });
  }

  /** Delivers a document to the guard, as a poll would. */
  publish(document: unknown): ScheduledEventsDocument {
    const parsed = parseScheduledEventsDocument(document);
    this.#failures = 0;
    this.#lastSuccessAt = this.#ctx?.clock.now() ?? null;
    this.#ctx?.onDocument(parsed);
    return parsed;
  }

  health(): SourceHealth {
    return {
      lastSuccessAt: this.#lastSuccessAt,
      lastErrorAt: null,
      lastError: null,
      consecutiveFailures: this.#failures,
      requests: 0,
    };
  }
}

/** What {@link createTestGuard} returns. */
export interface TestGuard {
  readonly guard: Guard;
  readonly source: MemorySource;
  readonly logger: Logger & { readonly lines: LogLine[] };
  /** Resolves once the guard is in `state` (real time), or rejects after `timeoutMs`. */
  reach(state: GuardState, timeoutMs?: number): Promise<void>;
}

/**
 * A started guard on real clocks, fed by a {@link MemorySource} for `vm-1`, with short
 * timeouts and no drain delay: for testing an adapter's participant against real I/O.
 *
 * @example
 * ```ts
 * const t = await createTestGuard({ prepareTimeoutMs: 500 });
 * const handle = guardWorker(t.guard, worker);
 * t.source.announce({ EventId: 'E1' });          // a Freeze under way
 * await t.reach('frozen');
 * t.source.announce();                            // it is over
 * await t.reach('idle');
 * await t.guard.stop();
 * ```
 */
export async function createTestGuard(
  options: Omit<GuardOptions, 'source' | 'clock' | 'timers'> = {},
): Promise<TestGuard> {
  const source = new MemorySource({ resourceName: 'vm-1' });
  const logger = recordingLogger();
  const guard = createGuardWithSource({
    resourceName: 'vm-1',
    drainDelayMs: 0,
    prepareTimeoutMs: 1000,
    resumeTimeoutMs: 1000,
    resumeWhen: 'removed',
    logger,
    ...options,
    source,
  });
  await guard.start();
  const reach = (state: GuardState, timeoutMs = 10_000) =>
    new Promise<void>((resolve, reject) => {
      if (guard.state === state) return resolve();
      const timer = setTimeout(() => {
        off();
        reject(
          new Error(`guard did not reach ${state} within ${timeoutMs} ms (is ${guard.state})`),
        );
      }, timeoutMs);
      const off = guard.on('state', (next) => {
        if (next !== state) return;
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  return { guard, source, logger, reach };
}

/** What a participant contract case gets from the adapter under test. */
export interface ContractSubject {
  /** The adapter's handle, registered with the guard it was given. */
  readonly handle: { readonly participant: Participant; close(): void };
  /**
   * Makes the next prepare slow (a job in progress, a stream that does not drain), so the
   * deadline and the abort signal are what end it. Omit when the adapter cannot be busy.
   */
  busy?(): void | Promise<void>;
  /** Releases what `busy()` held, so cleanup can finish. */
  idle?(): void | Promise<void>;
}

/** One case of {@link participantContract}: run it as a test. */
export interface ContractCase {
  readonly name: string;
  run(): Promise<void>;
}

/**
 * The contract every participant must keep, as framework-free cases for any test runner:
 * prepare and resume once per cycle; the deadline and the abort signal end a slow
 * prepare; a cancelled prepare is still resumed; `close()` in the middle of a cycle
 * leaves the guard working and is idempotent. `make` builds the adapter on the guard it
 * is given.
 *
 * @example
 * ```ts
 * const cases = participantContract((guard) => ({ handle: guardFlushable(guard, { name: 'log', flush }) }));
 * for (const c of cases) it(c.name, c.run);
 * ```
 */
export function participantContract(
  make: (guard: Guard) => ContractSubject | Promise<ContractSubject>,
  options: {
    /** The subject has `busy()`: add the deadline and abort-signal cases. */
    readonly slowPrepare?: boolean;
  } = {},
): ContractCase[] {
  const outcome = (t: TestGuard, name: string, step: 'prepare' | 'resume') =>
    t.guard.status().participants.find((p) => p.name === name)?.[step] ?? null;
  const check = (ok: unknown, message: string) => {
    if (!ok) throw new Error(`participant contract: ${message}`);
  };
  const withGuard = async (
    options: Omit<GuardOptions, 'source' | 'clock' | 'timers'>,
    body: (t: TestGuard, s: ContractSubject) => Promise<void>,
  ) => {
    const t = await createTestGuard(options);
    const s = await make(t.guard);
    try {
      await body(t, s);
    } finally {
      await s.idle?.();
      s.handle.close();
      await t.guard.stop();
    }
  };
  const cases: ContractCase[] = [
    {
      name: 'prepares and resumes once per cycle, both ok',
      run: () =>
        withGuard({}, async (t, s) => {
          const calls: string[] = [];
          const off = t.guard.on('participant', (info) => {
            if (info.name === s.handle.participant.name) calls.push(`${info.step}:${info.outcome}`);
          });
          t.source.announce({ EventId: 'C1' });
          await t.reach('frozen');
          t.source.announce();
          await t.reach('idle');
          off();
          const resume = outcome(t, s.handle.participant.name, 'resume');
          check(
            calls.join() === 'prepare:ok,resume:ok',
            `expected one ok prepare and one ok resume, got ${calls.join() || 'nothing'}${resume?.error ? ` (${resume.error.message})` : ''}`,
          );
        }),
    },
    {
      name: 'close() in the middle of a cycle unregisters it, and the guard still resumes the rest',
      run: () =>
        withGuard({}, async (t, s) => {
          t.source.announce({ EventId: 'C2' });
          await t.reach('frozen');
          s.handle.close();
          s.handle.close(); // idempotent
          check(
            !t.guard.status().participants.some((p) => p.name === s.handle.participant.name),
            'still listed after close()',
          );
          t.source.announce();
          await t.reach('idle');
          check(t.guard.isReady(), 'guard not serving after the cycle');
        }),
    },
  ];
  if (!options.slowPrepare) return cases;
  const busy = async (s: ContractSubject) => {
    check(s.busy, 'slowPrepare is set but the subject has no busy()');
    await s.busy!();
  };
  cases.push(
    {
      name: 'a slow prepare is ended by its deadline, and still resumed',
      run: () =>
        withGuard({ prepareTimeoutMs: 400 }, async (t, s) => {
          await busy(s);
          const t0 = performance.now();
          t.source.announce({ EventId: 'C3' });
          await t.reach('frozen', 5_000);
          const took = performance.now() - t0;
          const prepare = outcome(t, s.handle.participant.name, 'prepare');
          check(prepare !== null, 'prepare was not called');
          check(
            took < 400 + 1_500,
            `the cycle took ${Math.round(took)} ms to get past a 400 ms deadline`,
          );
          await s.idle?.();
          t.source.announce();
          await t.reach('idle');
          const resume = outcome(t, s.handle.participant.name, 'resume');
          check(
            resume?.outcome === 'ok',
            `resume after a timed-out prepare: ${resume?.outcome}${resume?.error ? ` (${resume.error.message})` : ''}`,
          );
        }),
    },
    {
      name: 'a cancelled cycle aborts the prepare signal promptly, and resumes it',
      run: () =>
        withGuard({ prepareTimeoutMs: 10_000 }, async (t, s) => {
          await busy(s);
          t.source.announce({
            EventId: 'C4',
            EventStatus: 'Scheduled',
            NotBefore: new Date(Date.now() + 30_000).toUTCString(),
          });
          await t.reach('preparing');
          await new Promise((r) => setTimeout(r, 200));
          const t0 = performance.now();
          t.source.announce(); // cancelled: removed before it started
          await t.reach('idle', 5_000);
          const took = performance.now() - t0;
          check(took < 2_000, `the cancelled prepare held the guard ${Math.round(took)} ms`);
          const resume = outcome(t, s.handle.participant.name, 'resume');
          check(
            resume?.outcome === 'ok',
            `resume after a cancelled prepare: ${resume?.outcome}${resume?.error ? ` (${resume.error.message})` : ''}`,
          );
        }),
    },
  );
  return cases;
}
