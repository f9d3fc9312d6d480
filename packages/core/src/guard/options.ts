import {
  BALANCER_PRESETS,
  type BalancerProfile,
  balancerFromEnv,
  balancerTimings,
  resolveBalancer,
} from '../drain/balancer.js';
import { assertOption, envOneOf, withDefaults } from '../errors.js';
import { KNOWN_EVENT_TYPES, type KnownEventType } from '../event.js';
import { envLoggerOptions, type Logger } from '../logger.js';
import type { ApprovalPolicy, GuardMode, GuardOptions, ResumeWhen } from './types.js';

/** Defaults of every numeric and policy option, in one place. */
export const GUARD_DEFAULTS = {
  approve: 'never' as ApprovalPolicy,
  mode: 'active' as GuardMode,
  leadTimeMs: 60_000,
  drainDelayMs: 15_000,
  prepareTimeoutMs: 30_000,
  resumeTimeoutMs: 30_000,
  resumeWhen: 'after-pause' as ResumeWhen,
  pauseThresholdMs: 1000,
  tickIntervalMs: 100,
  maxHoldMs: 120_000,
  blindAfterMs: 30_000,
  requireSource: false,
  local: true,
};

/** The options a guard runs with, after defaults and checks. */
export type ResolvedOptions = typeof GUARD_DEFAULTS & {
  readonly eventTypes: readonly KnownEventType[];
  readonly resourceName: string | undefined;
  /** The balancer in front of this instance: `lb`, `FREEZEGUARD_LB`, else Azure LB's defaults. */
  readonly balancer: BalancerProfile;
  /** True when `lb` or `FREEZEGUARD_LB` named the balancer (its timings then set the defaults). */
  readonly balancerGiven: boolean;
};

/** Azure Load Balancer's probe defaults: what the drain counts when no balancer is named. */
const DEFAULT_BALANCER = BALANCER_PRESETS['azure-lb'];

type Env = Readonly<Record<string, string | undefined>>;

/** A whole number of milliseconds from the environment; throws naming the variable. */
function envMs(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  assertOption(Number.isFinite(n) && n >= 0, name, 'must be a number of milliseconds ≥ 0', raw);
  return n;
}

/** `1`/`true`/`yes` or `0`/`false`/`no` from the environment; throws naming the variable. */
function envFlag(env: Env, name: string): boolean | undefined {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return undefined;
  const on = ['1', 'true', 'yes'].includes(raw);
  assertOption(on || ['0', 'false', 'no'].includes(raw), name, 'must be 1/true or 0/false', raw);
  return on;
}

/**
 * The guard options the environment sets — the one table of freezeguard's variables that
 * map to options (`FREEZEGUARD_MODE`, `FREEZEGUARD_DISABLED`, `FREEZEGUARD_APPROVE`,
 * `FREEZEGUARD_LEAD_TIME_MS`, `FREEZEGUARD_DRAIN_DELAY_MS`, `FREEZEGUARD_LB`,
 * `FREEZEGUARD_RESOURCE_NAME`, `FREEZEGUARD_LOCAL`): options in code win over them. An invalid value throws
 * `ERR_BAD_OPTION` naming the variable. `FREEZEGUARD_DISABLED=1` wins over
 * `FREEZEGUARD_MODE`: it is the switch an operator reaches for.
 *
 * @example
 * ```ts
 * envGuardOptions({ FREEZEGUARD_MODE: 'observe', FREEZEGUARD_LB: 'kubernetes' });
 * // { mode: 'observe', lb: 'kubernetes' }
 * ```
 */
export function envGuardOptions(env: Env = process.env): Partial<GuardOptions> {
  const out: { -readonly [K in keyof GuardOptions]?: GuardOptions[K] } = {};
  const mode = envOneOf<GuardMode>(env, 'FREEZEGUARD_MODE', ['active', 'observe', 'disabled']);
  if (mode) out.mode = mode;
  if (envFlag(env, 'FREEZEGUARD_DISABLED')) out.mode = 'disabled';
  const approve = env.FREEZEGUARD_APPROVE?.trim();
  if (approve) {
    assertOption(
      ['never', 'solo', 'always', 'fleet'].includes(approve),
      'FREEZEGUARD_APPROVE',
      "must be 'never', 'solo', 'always' or 'fleet'",
      approve,
    );
    out.approve = approve as ApprovalPolicy;
  }
  const lead = envMs(env, 'FREEZEGUARD_LEAD_TIME_MS');
  if (lead !== undefined) out.leadTimeMs = lead;
  const drain = envMs(env, 'FREEZEGUARD_DRAIN_DELAY_MS');
  if (drain !== undefined) out.drainDelayMs = drain;
  const lb = balancerFromEnv(env.FREEZEGUARD_LB);
  if (lb) out.lb = lb;
  if (env.FREEZEGUARD_RESOURCE_NAME) out.resourceName = env.FREEZEGUARD_RESOURCE_NAME;
  const local = envFlag(env, 'FREEZEGUARD_LOCAL');
  if (local !== undefined) out.local = local;
  return out;
}

// Keys that are not plain values (objects the guard is composed of): accepted, not merged.
const COMPONENT_KEYS = ['source', 'fleet', 'logger', 'clock', 'timers'] as const;
const KNOWN_KEYS = [
  ...Object.keys(GUARD_DEFAULTS),
  'eventTypes',
  'resourceName',
  'lb',
  ...COMPONENT_KEYS,
];

/**
 * Merges options over defaults and checks every invariant, naming the option at fault.
 * Unknown keys are rejected with the closest known name: a typo such as `drainDelay`
 * would otherwise silently run with the default.
 */
export function resolveGuardOptions(inCode: GuardOptions, env: Env = process.env): ResolvedOptions {
  assertOption(
    typeof inCode === 'object' && inCode !== null,
    'options',
    'must be an object',
    inCode,
  );
  for (const key of Object.keys(inCode)) {
    if (!KNOWN_KEYS.includes(key)) {
      const hint = closest(key, KNOWN_KEYS);
      assertOption(false, key, `is not an option${hint ? ` (did you mean ${hint}?)` : ''}`, key);
    }
  }
  // Options in code win over the environment, which wins over what the balancer implies.
  const options: GuardOptions = { ...envGuardOptions(env), ...stripUndefined(inCode) };
  const balancerGiven = options.lb !== undefined;
  const balancer = balancerGiven ? resolveBalancer(options.lb!) : DEFAULT_BALANCER;
  const timings = balancerGiven ? balancerTimings(balancer) : null;
  const { lb: _lb, ...plain } = options;
  const o = withDefaults<ResolvedOptions>(
    {
      ...GUARD_DEFAULTS,
      ...(timings ? { drainDelayMs: timings.drainDelayMs, leadTimeMs: timings.leadTimeMs } : {}),
      eventTypes: KNOWN_EVENT_TYPES,
      resourceName: undefined,
      balancer,
      balancerGiven,
    },
    plain,
  );
  for (const key of ['leadTimeMs', 'drainDelayMs'] as const) {
    assertOption(Number.isFinite(o[key]) && o[key] >= 0, key, 'must be a number ≥ 0', o[key]);
  }
  for (const key of [
    'prepareTimeoutMs',
    'resumeTimeoutMs',
    'pauseThresholdMs',
    'tickIntervalMs',
    'maxHoldMs',
    'blindAfterMs',
  ] as const) {
    assertOption(Number.isFinite(o[key]) && o[key] > 0, key, 'must be a number > 0', o[key]);
  }
  assertOption(
    o.tickIntervalMs * 2 <= o.pauseThresholdMs,
    'tickIntervalMs',
    'must be at most half of pauseThresholdMs',
    o.tickIntervalMs,
  );
  assertOption(
    ['never', 'solo', 'always', 'fleet'].includes(o.approve),
    'approve',
    "must be 'never', 'solo', 'always' or 'fleet'",
    o.approve,
  );
  assertOption(
    o.approve !== 'fleet' || options.fleet !== undefined,
    'approve',
    "'fleet' needs the fleet option (e.g. redisFleet() from @freezeguard/fleet)",
    o.approve,
  );
  assertOption(typeof o.local === 'boolean', 'local', 'must be true or false', o.local);
  assertOption(
    ['active', 'observe', 'disabled'].includes(o.mode),
    'mode',
    "must be 'active', 'observe' or 'disabled'",
    o.mode,
  );
  // Checked even when a logger is given: a typo in the deployment should not wait for the
  // day someone removes the logger option to show up.
  envLoggerOptions(env);
  assertOption(
    ['after-pause', 'removed'].includes(o.resumeWhen),
    'resumeWhen',
    "must be 'after-pause' or 'removed'",
    o.resumeWhen,
  );
  assertOption(
    Array.isArray(o.eventTypes) && o.eventTypes.length > 0,
    'eventTypes',
    `must be a non-empty array of ${KNOWN_EVENT_TYPES.join(', ')}`,
    o.eventTypes,
  );
  for (const type of o.eventTypes) {
    assertOption(
      KNOWN_EVENT_TYPES.includes(type),
      'eventTypes',
      `has ${JSON.stringify(type)}, which is not one of ${KNOWN_EVENT_TYPES.join(', ')}`,
      type,
    );
  }
  assertOption(
    o.resourceName === undefined ||
      (typeof o.resourceName === 'string' && o.resourceName.trim() !== ''),
    'resourceName',
    'must be a non-empty string',
    o.resourceName,
  );
  assertOption(
    typeof o.requireSource === 'boolean',
    'requireSource',
    'must be true or false',
    o.requireSource,
  );
  if (options.logger !== undefined) assertLogger(options.logger, 'logger');
  return o;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Throws `ERR_BAD_OPTION` unless `logger` has pino's four level methods. */
export function assertLogger(logger: unknown, option: string): asserts logger is Logger {
  for (const level of ['debug', 'info', 'warn', 'error']) {
    assertOption(
      typeof logger === 'object' &&
        logger !== null &&
        typeof (logger as Record<string, unknown>)[level] === 'function',
      option,
      `must be a pino-compatible logger with debug, info, warn and error methods (no ${level})`,
      logger,
    );
  }
}

function closest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const score = c.toLowerCase().startsWith(key.toLowerCase())
      ? 0
      : distance(key.toLowerCase(), c.toLowerCase());
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  return bestScore <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row[j]!;
      row[j] = next;
    }
  }
  return row[b.length]!;
}
