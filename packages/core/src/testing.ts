/**
 * Test helpers for code that uses a guard: a fake clock that can simulate a process stop
 * or a Hyper-V pause, an in-memory maintenance source, a recording logger, a started
 * test guard and the contract every participant must keep. Import from
 * `@freezeguard/core/testing`.
 *
 * @example
 * ```ts
 * import { FakeClock, MemorySource } from '@freezeguard/core/testing';
 * const clock = new FakeClock();
 * const source = new MemorySource({ resourceName: 'vm-1' });
 * const guard = createGuard({ source, clock, timers: clock });
 * ```
 *
 * @module
 */

export { FakeClock } from './testing/fake-clock.js';
export { MemorySource } from './testing/memory-source.js';
export {
  type ContractCase,
  type ContractSubject,
  createTestGuard,
  participantContract,
  type TestGuard,
} from './testing/participant-contract.js';
export { type LogLine, recordingLogger } from './testing/recording-logger.js';
