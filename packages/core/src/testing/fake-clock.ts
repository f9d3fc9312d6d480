import type { Clock, TimerHandle, Timers } from '../time/clock.js';

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
