import { describe, expect, it } from 'vitest';
import {
  isNoNotificationsYet,
  parseUpcomingMaintenance,
  STOPPING_VALUES,
} from '../src/sources/gcp-values.js';

// GCE's maintenance values as the metadata server writes them.

const res = (status: number, body: string) => ({ status, body: Buffer.from(body), headers: {} });

describe('GCE upcoming-maintenance', () => {
  it('reads the snake_case, string-valued JSON the metadata server serves', () => {
    const value = JSON.stringify({
      can_reschedule: 'true',
      latest_window_start_time: '2026-01-10T10:00:00Z',
      maintenance_status: 'PENDING',
      type: 'SCHEDULED',
      window_end_time: '2026-01-10T12:00:00Z',
      window_start_time: '2026-01-10T09:00:00Z',
    });
    expect(parseUpcomingMaintenance(value)).toEqual({
      start: Date.UTC(2026, 0, 10, 9),
      status: 'PENDING',
      type: 'SCHEDULED',
    });
  });

  it('falls back to latest_window_start_time, and still reads camelCase', () => {
    expect(parseUpcomingMaintenance('{"latest_window_start_time":"2026-01-10T10:00:00Z"}')).toEqual(
      { start: Date.UTC(2026, 0, 10, 10), status: 'PENDING', type: 'SCHEDULED' },
    );
    expect(
      parseUpcomingMaintenance(
        '{"windowStartTime":"2026-01-10T09:00:00Z","maintenanceStatus":"ONGOING","type":"UNSCHEDULED"}',
      ),
    ).toEqual({ start: Date.UTC(2026, 0, 10, 9), status: 'ONGOING', type: 'UNSCHEDULED' });
  });

  it('{ } and an empty value announce no window', () => {
    expect(parseUpcomingMaintenance('{ }')).toBeNull();
    expect(parseUpcomingMaintenance('')).toBeNull();
    expect(parseUpcomingMaintenance('{"window_start_time":""}')).toBeNull();
  });

  it('rejects what is not a window', () => {
    expect(() => parseUpcomingMaintenance('not json')).toThrow(/not JSON/);
    expect(() => parseUpcomingMaintenance('[]')).toThrow(/JSON object/);
    expect(() => parseUpcomingMaintenance('{"window_start_time":7}')).toThrow(/must be a string/);
    expect(() => parseUpcomingMaintenance('{"window_start_time":"soon"}')).toThrow(/not a date/);
  });

  it('503 "no notifications have been received yet" is recognised; other 503s are not', () => {
    expect(
      isNoNotificationsYet(
        res(503, '{ "error": "no notifications have been received yet, try again later" }'),
      ),
    ).toBe(true);
    expect(isNoNotificationsYet(res(503, 'Service Unavailable'))).toBe(false);
    expect(isNoNotificationsYet(res(200, 'no notifications have been received yet'))).toBe(false);
  });
});

describe('GCE maintenance-event', () => {
  it('TERMINATE and SHUTDOWN_ON_HOST_MAINTENANCE stop the VM; MIGRATE and NONE do not', () => {
    expect(STOPPING_VALUES.has('TERMINATE_ON_HOST_MAINTENANCE')).toBe(true);
    expect(STOPPING_VALUES.has('SHUTDOWN_ON_HOST_MAINTENANCE')).toBe(true);
    expect(STOPPING_VALUES.has('MIGRATE_ON_HOST_MAINTENANCE')).toBe(false);
    expect(STOPPING_VALUES.has('NONE')).toBe(false);
  });
});
