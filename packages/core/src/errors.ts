/**
 * Stable machine-readable codes of {@link FreezeguardError}. Match on `code`, never on
 * the message text. `ERR_SOURCE_BLIND`: `start()` with `requireSource` found the
 * maintenance source unreachable (or no cloud at all).
 */
export type FreezeguardErrorCode =
  | 'ERR_BAD_OPTION'
  | 'ERR_BAD_DOCUMENT'
  | 'ERR_IMDS_HTTP'
  | 'ERR_IMDS_UNREACHABLE'
  | 'ERR_IMDS_TIMEOUT'
  | 'ERR_BODY_TOO_LARGE'
  | 'ERR_PARTICIPANT_FAILED'
  | 'ERR_PARTICIPANT_TIMEOUT'
  | 'ERR_CLOCK_SYNC'
  | 'ERR_APPROVAL_FAILED'
  | 'ERR_APPROVAL_UNSUPPORTED'
  | 'ERR_CANCELLED'
  | 'ERR_STOPPED'
  | 'ERR_SOURCE_BLIND';

// Every code once, checked both ways by the compiler: a code added to the type and not
// here (or the reverse) fails the build.
const CODES: { readonly [K in FreezeguardErrorCode]: true } = {
  ERR_BAD_OPTION: true,
  ERR_BAD_DOCUMENT: true,
  ERR_IMDS_HTTP: true,
  ERR_IMDS_UNREACHABLE: true,
  ERR_IMDS_TIMEOUT: true,
  ERR_BODY_TOO_LARGE: true,
  ERR_PARTICIPANT_FAILED: true,
  ERR_PARTICIPANT_TIMEOUT: true,
  ERR_CLOCK_SYNC: true,
  ERR_APPROVAL_FAILED: true,
  ERR_APPROVAL_UNSUPPORTED: true,
  ERR_CANCELLED: true,
  ERR_STOPPED: true,
  ERR_SOURCE_BLIND: true,
};

/**
 * Every {@link FreezeguardErrorCode}, at run time: metrics label errors by code and map
 * anything else (a code relayed from another process) to `other`, so labels stay bounded.
 *
 * @example
 * ```ts
 * FREEZEGUARD_ERROR_CODES.includes('ERR_SOURCE_BLIND'); // true
 * ```
 */
export const FREEZEGUARD_ERROR_CODES = Object.keys(CODES) as readonly FreezeguardErrorCode[];

/**
 * The one error class every freezeguard package throws or reports.
 *
 * @example
 * ```ts
 * try { parseScheduledEventsDocument(text); }
 * catch (err) { if (err instanceof FreezeguardError && err.code === 'ERR_BAD_DOCUMENT') … }
 * ```
 */
export class FreezeguardError extends Error {
  override readonly name = 'FreezeguardError';
  readonly code: FreezeguardErrorCode;
  /** Extra facts for logs (HTTP status, option name…); always JSON-serialisable. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: FreezeguardErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }

  /** A plain object for `status()` and structured logs; `details` only when it has any. */
  toJSON(): {
    name: string;
    code: FreezeguardErrorCode;
    message: string;
    details?: Readonly<Record<string, unknown>>;
  } {
    return Object.keys(this.details).length === 0
      ? { name: this.name, code: this.code, message: this.message }
      : { name: this.name, code: this.code, message: this.message, details: this.details };
  }
}

/**
 * Throws `ERR_BAD_OPTION` naming the option: used by every package to check its
 * invariants at construction time.
 *
 * @example
 * ```ts
 * assertOption(ms > 0, 'pollIntervalMs', 'must be a positive number', ms);
 * ```
 */
export function assertOption(
  condition: unknown,
  option: string,
  requirement: string,
  value?: unknown,
): asserts condition {
  if (!condition) {
    throw new FreezeguardError(
      'ERR_BAD_OPTION',
      `Invalid option \`${option}\`: ${requirement} (got ${describe(value)})`,
      { details: { option } },
    );
  }
}

/**
 * Merges options over defaults in one place: only keys the defaults know, and only values
 * that are not `undefined` (an explicit `undefined` means "the default").
 *
 * @example
 * ```ts
 * const o = withDefaults({ pollIntervalMs: 1000, maxBackoffMs: 30_000 }, options);
 * ```
 */
export function withDefaults<D extends object>(defaults: D, options: object): D {
  const merged = { ...defaults } as Record<string, unknown>;
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined && key in merged) merged[key] = value;
  }
  return merged as D;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) {
    return String(value);
  }
  return typeof value;
}

/** Coerces anything thrown into an `Error` so logs and `status()` have a message. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : `non-error thrown: ${String(value)}`);
}

/** `{ name, code?, message }` of any thrown value, for JSON status output. */
export function errorSummary(value: unknown): { name: string; code?: string; message: string } {
  const err = toError(value);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string'
    ? { name: err.name, code, message: err.message }
    : { name: err.name, message: err.message };
}

/**
 * One of `allowed` from the environment variable `name` (blank: `undefined`); any other
 * value throws `ERR_BAD_OPTION` naming the variable.
 *
 * @example
 * ```ts
 * envOneOf(process.env, 'FREEZEGUARD_LOG_FORMAT', ['json', 'text']); // 'json' | 'text' | undefined
 * ```
 */
export function envOneOf<T extends string>(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  allowed: readonly T[],
): T | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  assertOption(
    (allowed as readonly string[]).includes(raw),
    name,
    `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`,
    raw,
  );
  return raw as T;
}
