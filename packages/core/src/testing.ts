/**
 * Test helpers for code that uses a guard: a fake clock that can simulate a process stop
 * or a Hyper-V pause, and an in-memory maintenance source. Import from
 * `@freezeguard/core/testing`.
 *
 * @module
 */

import { parseScheduledEventsDocument, type ScheduledEventsDocument } from './document.js';
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

export {
  type ContractCase,
  type ContractSubject,
  createTestGuard,
  participantContract,
  type TestGuard,
} from './participant-contract.js';
