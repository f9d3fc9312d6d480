import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGuard, type GuardOptions } from '../src/index.js';
import { FakeClock, MemorySource, recordingLogger } from '../src/testing.js';

export { recordingLogger };

const here = dirname(fileURLToPath(import.meta.url));
export const fixtureDir = join(here, 'fixtures', 'azure');

export function fixtures(): { name: string; text: string }[] {
  return readdirSync(fixtureDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((name) => ({ name, text: readFileSync(join(fixtureDir, name), 'utf8') }));
}

export const T0 = Date.UTC(2026, 3, 11, 22, 0, 0);

export function setup(options: GuardOptions = {}) {
  const clock = new FakeClock({ now: T0 });
  const source = new MemorySource({ resourceName: 'vm-1' });
  const logger = recordingLogger();
  const guard = createGuard({
    source,
    clock,
    timers: clock,
    logger,
    resourceName: 'vm-1',
    leadTimeMs: 60_000,
    drainDelayMs: 5_000,
    ...options,
  });
  const states: string[] = [];
  guard.on('state', (s) => states.push(s));
  return { clock, source, logger, guard, states };
}

export function rfc1123(ms: number): string {
  return new Date(ms).toUTCString();
}

let incarnation = 1;
export function doc(events: Record<string, unknown>[]): Record<string, unknown> {
  return { DocumentIncarnation: ++incarnation, Events: events };
}

export function freeze(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    EventId: 'EV-1',
    EventStatus: 'Scheduled',
    EventType: 'Freeze',
    ResourceType: 'VirtualMachine',
    Resources: ['vm-1'],
    NotBefore: rfc1123(T0 + 15 * 60_000),
    Description: 'Host maintenance',
    EventSource: 'Platform',
    DurationInSeconds: 5,
    ...overrides,
  };
}
