import type { Logger } from '../logger.js';

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
