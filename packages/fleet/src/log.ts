import type { Logger } from '@freezeguard/core';

/**
 * `logger` with `{ component: 'fleet' }` added to the facts of every record: the fleet's
 * messages carry the one `freezeguard: ` prefix like core's, and stay told apart (and
 * greppable) by this fact.
 *
 * @example
 * ```ts
 * fleetLogger(logger).info({ slot: 1 }, 'freezeguard: drain slot granted');
 * // logs { slot: 1, component: 'fleet' }
 * ```
 */
export function fleetLogger(logger: Logger): Logger {
  const wrap =
    (level: keyof Logger) =>
    (objOrMsg: object | string, msg?: string): void => {
      if (typeof objOrMsg === 'string') logger[level]({ component: 'fleet' }, objOrMsg);
      else logger[level]({ ...objOrMsg, component: 'fleet' }, msg);
    };
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}
