import {
  createGuardWithSource,
  type Guard,
  type GuardOptions,
  type GuardState,
  type Participant,
} from '../guard/guard.js';
import type { Logger } from '../logger.js';
import { MemorySource } from './memory-source.js';
import { type LogLine, recordingLogger } from './recording-logger.js';

// Helpers for testing an adapter's participant against real I/O; exported from
// `@freezeguard/core/testing`.

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
