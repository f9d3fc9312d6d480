/**
 * One level of a {@link Logger}: pino's two call shapes.
 *
 * @example
 * ```ts
 * const warn: LogFn = (a: object | string, b?: string) => console.warn(b ?? a, a);
 * ```
 */
export type LogFn = {
  (obj: object, msg?: string): void;
  (msg: string): void;
};

/**
 * The pino-compatible subset freezeguard logs through. Pass your app's logger (pino,
 * `fastify.log`, bunyan…); freezeguard always calls it as `logger.level({ …facts }, 'message')`.
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * createGuard({ logger: pino({ name: 'freezeguard' }) });
 * ```
 */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/** Log levels, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/**
 * A small logger writing one line per record to stderr; the default when none is given.
 * freezeguard's own messages already start with `freezeguard: `, so it adds no name of its
 * own unless you give one.
 *
 * @example
 * ```ts
 * const logger = createConsoleLogger({ level: 'debug' });
 * logger.info({ state: 'ready' }, 'prepared');
 * ```
 */
export function createConsoleLogger(
  options: { readonly level?: LogLevel; readonly name?: string } = {},
): Logger {
  const min = ORDER[options.level ?? 'info'];
  const prefix = options.name ? `${options.name}: ` : '';
  const make =
    (level: Exclude<LogLevel, 'silent'>): LogFn =>
    (objOrMsg: object | string, msg?: string) => {
      if (ORDER[level] < min) return;
      const text = typeof objOrMsg === 'string' ? objOrMsg : (msg ?? '');
      const facts = typeof objOrMsg === 'string' ? '' : ` ${safeJson(objOrMsg)}`;
      process.stderr.write(
        `${new Date().toISOString()} ${level.toUpperCase()} ${prefix}${text}${facts}\n`,
      );
    };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}

/**
 * A logger that drops everything; handy in tests.
 *
 * @example
 * ```ts
 * createGuard({ logger: silentLogger });
 * ```
 */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v) => {
      if (!(v instanceof Error)) return v;
      const code = (v as { code?: unknown }).code;
      return typeof code === 'string'
        ? { name: v.name, code, message: v.message }
        : { name: v.name, message: v.message };
    });
  } catch {
    return '[unserialisable]';
  }
}
