import { parseNotBefore } from '../document.js';
import { FreezeguardError } from '../errors.js';
import type { MetadataResponse } from './metadata-http.js';

/*
 * The values of GCE's maintenance keys. `instance/upcoming-maintenance`, as the metadata
 * server serves it (asked with `?alt=json`): a JSON object in snake_case whose values are all strings, e.g.
 *   { "can_reschedule": "true", "maintenance_status": "PENDING", "type": "SCHEDULED",
 *     "window_start_time": "2026-01-10T09:00:00Z", "window_end_time": "…",
 *     "latest_window_start_time": "…" }
 * `{ }` when no maintenance is planned, and 503 with `no notifications have been received
 * yet` on a VM that has had none since it booted. The Compute API's camelCase names are
 * accepted too.
 */

/**
 * `maintenance-event` values after which the VM stops: `TERMINATE_ON_HOST_MAINTENANCE`
 * (terminate policy) and `SHUTDOWN_ON_HOST_MAINTENANCE` (listed in Google's samples, e.g.
 * for VMs that cannot live-migrate). Both give the same ~60 s notice.
 */
export const STOPPING_VALUES: ReadonlySet<string> = new Set([
  'TERMINATE_ON_HOST_MAINTENANCE',
  'SHUTDOWN_ON_HOST_MAINTENANCE',
]);

/** An upcoming maintenance window. */
export interface GceUpcomingWindow {
  /** Epoch ms the window opens (or the latest it may open). */
  readonly start: number;
  /** `PENDING`, `ONGOING`… */
  readonly status: string;
  /** `SCHEDULED`, `UNSCHEDULED`… */
  readonly type: string;
}

function bad(message: string): FreezeguardError {
  return new FreezeguardError('ERR_BAD_DOCUMENT', `GCE metadata: ${message}`);
}

/**
 * True for the metadata server's 503 on `upcoming-maintenance` that means "nothing has
 * been announced to this VM yet": no window, not a failure.
 *
 * @example
 * ```ts
 * if (isNoNotificationsYet(res)) value = null; // no window
 * ```
 */
export function isNoNotificationsYet(res: MetadataResponse): boolean {
  return (
    res.status === 503 &&
    /no notifications have been received yet/i.test(res.body.toString('utf8').slice(0, 1000))
  );
}

/**
 * The window an `upcoming-maintenance` value announces, or null when it announces none
 * (`{ }`, or no start time). Throws `ERR_BAD_DOCUMENT` on a value that is not a JSON
 * object or whose start time is not a date.
 *
 * @example
 * ```ts
 * parseUpcomingMaintenance('{"window_start_time":"2026-01-10T09:00:00Z","maintenance_status":"PENDING"}');
 * // { start: 1768035600000, status: 'PENDING', type: 'SCHEDULED' }
 * ```
 */
export function parseUpcomingMaintenance(value: string): GceUpcomingWindow | null {
  if (value.trim() === '') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw bad('upcoming-maintenance is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw bad('upcoming-maintenance must be a JSON object');
  const p = parsed as Record<string, unknown>;
  const field = (snake: string, camel: string): unknown => p[snake] ?? p[camel];
  const startText =
    field('window_start_time', 'windowStartTime') ??
    field('latest_window_start_time', 'latestWindowStartTime');
  if (startText === undefined || startText === null || startText === '') return null;
  if (typeof startText !== 'string')
    throw bad('upcoming-maintenance window_start_time must be a string');
  let start: number | null;
  try {
    start = parseNotBefore(startText);
  } catch {
    throw bad(`upcoming-maintenance window_start_time is not a date: ${JSON.stringify(startText)}`);
  }
  if (start === null) return null;
  const status = field('maintenance_status', 'maintenanceStatus');
  const type = field('type', 'type');
  return {
    start,
    status: typeof status === 'string' && status !== '' ? status : 'PENDING',
    type: typeof type === 'string' && type !== '' ? type : 'SCHEDULED',
  };
}
