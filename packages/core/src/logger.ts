import { envOneOf } from './errors.js';

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
/** How {@link createConsoleLogger} writes a record: a line of text, or one JSON object per line. */
export type LogFormat = 'text' | 'json';

/** The levels, for checking a configured value. */
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
/** The formats, for checking a configured value. */
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/**
 * The console logger's settings from the environment (`FREEZEGUARD_LOG_LEVEL`: `debug`,
 * `info`, `warn`, `error`, `silent`; `FREEZEGUARD_LOG_FORMAT`: `text`, `json`). An invalid
 * value throws `ERR_BAD_OPTION` naming the variable.
 *
 * @example
 * ```ts
 * envLoggerOptions({ FREEZEGUARD_LOG_FORMAT: 'json' }); // { format: 'json' }
 * ```
 */
export function envLoggerOptions(env: Readonly<Record<string, string | undefined>> = process.env): {
  level?: LogLevel;
  format?: LogFormat;
} {
  const level = envOneOf(env, 'FREEZEGUARD_LOG_LEVEL', LOG_LEVELS);
  const format = envOneOf(env, 'FREEZEGUARD_LOG_FORMAT', LOG_FORMATS);
  return { ...(level ? { level } : {}), ...(format ? { format } : {}) };
}

/** Options of {@link createConsoleLogger}. */
export interface ConsoleLoggerOptions {
  /** The lowest level written. Default `FREEZEGUARD_LOG_LEVEL`, else `info`. */
  readonly level?: LogLevel;
  /** `text`: `<time> INFO <msg> {facts}`; `json`: `{"time","level","msg",...facts}` per line. Default `FREEZEGUARD_LOG_FORMAT`, else `text`. */
  readonly format?: LogFormat;
  /** Written before the message (text) or as `name` (json). */
  readonly name?: string;
  /** Where lines go. Default: stderr. */
  readonly write?: (line: string) => void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/**
 * A small logger writing one line per record to stderr; the default when none is given.
 * `FREEZEGUARD_LOG_LEVEL` and `FREEZEGUARD_LOG_FORMAT` set its level and format unless
 * `level` and `format` are given.
 * freezeguard's own messages already start with `freezeguard: `, so it adds no name of its
 * own unless you give one. In `json` format each line is one object: `time` (ISO 8601),
 * `level`, `msg`, then the facts (`name` too when given); a fact never overwrites those.
 *
 * @example
 * ```ts
 * const logger = createConsoleLogger({ level: 'debug', format: 'json' });
 * logger.info({ state: 'ready' }, 'freezeguard: prepared');
 * // {"time":"2026-…Z","level":"info","msg":"freezeguard: prepared","state":"ready"}
 * ```
 */
export function createConsoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  // What is not given in code comes from the environment, so an app's own console logger
  // follows the same two variables as the guard's default one.
  const fromEnv = options.level && options.format ? {} : envLoggerOptions();
  const min = ORDER[options.level ?? fromEnv.level ?? 'info'];
  const json = (options.format ?? fromEnv.format) === 'json';
  const prefix = options.name ? `${options.name}: ` : '';
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const make =
    (level: Exclude<LogLevel, 'silent'>): LogFn =>
    (objOrMsg: object | string, msg?: string) => {
      if (ORDER[level] < min) return;
      const text = typeof objOrMsg === 'string' ? objOrMsg : (msg ?? '');
      const time = new Date().toISOString();
      if (json) {
        const facts = typeof objOrMsg === 'string' ? {} : objOrMsg;
        const head = { time, level, msg: text, ...(options.name ? { name: options.name } : {}) };
        // head first in the line, and a fact named like one of its keys does not replace it.
        write(`${safeJson({ ...head, ...facts, ...head }, head)}\n`);
        return;
      }
      const facts = typeof objOrMsg === 'string' ? '' : ` ${safeJson(objOrMsg)}`;
      write(`${time} ${level.toUpperCase()} ${prefix}${text}${facts}\n`);
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

function safeJson(value: unknown, fallback?: object): string {
  try {
    return JSON.stringify(value, (_key, v) => {
      if (!(v instanceof Error)) return v;
      const code = (v as { code?: unknown }).code;
      return typeof code === 'string'
        ? { name: v.name, code, message: v.message }
        : { name: v.name, message: v.message };
    });
  } catch {
    // A JSON line must stay JSON: the record without its facts.
    return fallback
      ? JSON.stringify({ ...fallback, facts: '[unserialisable]' })
      : '[unserialisable]';
  }
}

/**
 * `logger` with `facts` added to every record (internal): the VM-local coordinator's
 * messages carry the one `freezeguard: ` prefix and `{ component: 'local' }`.
 *
 * @example
 * ```ts
 * withFacts(logger, { component: 'local' }).info({}, 'freezeguard: a process left');
 * ```
 */
export function withFacts(logger: Logger, facts: object): Logger {
  const wrap =
    (level: Exclude<LogLevel, 'silent'>): LogFn =>
    (objOrMsg: object | string, msg?: string) => {
      if (typeof objOrMsg === 'string') logger[level]({ ...facts }, objOrMsg);
      else logger[level]({ ...objOrMsg, ...facts }, msg);
    };
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}
