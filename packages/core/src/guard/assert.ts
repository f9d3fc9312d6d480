import { assertOption } from '../errors.js';
import type { Guard } from './types.js';

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
