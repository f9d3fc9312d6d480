import type { CycleInfo, CycleOutcome, Guard, GuardState, PauseSignal } from '@freezeguard/core';
import { FREEZEGUARD_ERROR_CODES, KNOWN_EVENT_TYPES } from '@freezeguard/core/adapter';

/** The `event_type` label of a type freezeguard does not know (it comes from the network). */
export const OTHER = 'other';

/**
 * A label value from the network, bounded: one of `known`, else `other`. A metadata
 * document could otherwise mint a new series per string and exhaust the scraper.
 *
 * @example
 * ```ts
 * bounded('Freeze', KNOWN_EVENT_TYPES); // 'Freeze'
 * bounded('x'.repeat(500), KNOWN_EVENT_TYPES); // 'other'
 * ```
 */
export function bounded(value: string, known: readonly string[]): string {
  return known.includes(value) ? value : OTHER;
}

/** `event_type`: the five known types, else `other`. */
export const eventTypeLabel = (type: string): string => bounded(type, KNOWN_EVENT_TYPES);

/** `code`: a FreezeguardError code, else `other` (a code relayed by another process). */
export const errorCodeLabel = (code: string): string => bounded(code, FREEZEGUARD_ERROR_CODES);

/**
 * Remembers the last `max` keys: `first(key)` is true once per key, so an EventId listed
 * in many documents, listed twice in one, or gone and back is counted once. Bounded so a
 * source minting ids cannot grow it without end.
 *
 * @example
 * ```ts
 * const once = new OnceEach(1024);
 * once.first('EV-1'); // true
 * once.first('EV-1'); // false
 * ```
 */
export class OnceEach {
  readonly #seen = new Set<string>();
  readonly #max: number;

  constructor(max = 1024) {
    this.#max = max;
  }

  first(key: string): boolean {
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    // A Set iterates in insertion order: the oldest key goes first.
    if (this.#seen.size > this.#max) this.#seen.delete(this.#seen.values().next().value as string);
    return true;
  }
}

/**
 * 1 while the guard's source answers, 0 while it is blind (no good answer for
 * `blindAfterMs`) or reads nothing (no cloud detected): read at collection time.
 *
 * @example
 * ```ts
 * sourceUp(guard); // 1
 * ```
 */
export function sourceUp(guard: Guard): 0 | 1 {
  const status = guard.status();
  return !status.blind && status.source.watching !== false ? 1 : 0;
}

/** Every lifecycle state, so the `state` gauge has a series (0 or 1) for each. */
export const STATES: readonly GuardState[] = [
  'idle',
  'scheduled',
  'preparing',
  'ready',
  'frozen',
  'resuming',
  'shutting-down',
];

/** Every cycle outcome, so `cycles_total` starts at 0 for each and `increase()` works at once. */
export const CYCLE_OUTCOMES: readonly CycleOutcome[] = [
  'resumed',
  'cancelled',
  'failsafe',
  'shutdown',
];

/** Histogram bucket boundaries, seconds. */
export interface Buckets {
  /** `out_of_rotation_seconds`: a drain delay (15 s) + the freeze + resume, up to `maxHoldMs`. */
  readonly outOfRotation?: readonly number[];
  /** `pause_seconds`: Azure freezes last a few seconds, rarely ~30 s. */
  readonly pause?: readonly number[];
  /** `participant_duration_seconds`: from a flag flip to a long queue drain. */
  readonly participant?: readonly number[];
}

export const DEFAULT_BUCKETS: Required<Buckets> = {
  outOfRotation: [1, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600],
  pause: [0.25, 0.5, 1, 2, 3, 5, 10, 15, 20, 30, 60, 120],
  participant: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60],
};

/**
 * What a metrics backend records. Everything is driven by guard events, so nothing runs
 * per HTTP request: the cost is a few calls per maintenance event.
 */
export interface MetricsSink {
  state(state: GuardState, ready: boolean): void;
  /** Once per EventId; `eventType` already bounded. */
  event(eventType: string, relevant: boolean): void;
  cycle(outcome: CycleOutcome, outOfRotationSeconds: number | null): void;
  pause(signal: PauseSignal, seconds: number): void;
  participant(name: string, step: 'prepare' | 'resume', outcome: string, seconds: number): void;
  /** `code` already bounded. */
  sourceError(code: string): void;
  approval(): void;
}

/**
 * Subscribes `sink` to `guard`'s events; returns the unsubscribe function. Shared by the
 * Prometheus and OpenTelemetry backends so both count exactly the same things.
 */
export function observeGuard(guard: Guard, sink: MetricsSink): () => void {
  // An event is counted once, when its EventId first appears, however many documents
  // list it (and if it leaves and comes back).
  const counted = new OnceEach();
  const offs = [
    guard.on('state', (state) => sink.state(state, guard.isReady())),
    guard.on('event', (document) => {
      let reports: ReturnType<Guard['status']>['events'] | null = null;
      for (const event of document.events) {
        if (!counted.first(event.id)) continue;
        // status() only on a new event: documents change a few times per maintenance.
        reports ??= guard.status().events;
        const report = reports.find((r) => r.eventId === event.id);
        sink.event(eventTypeLabel(event.kind), report?.relevant ?? false);
      }
    }),
    guard.on('cycle', (info: CycleInfo) =>
      sink.cycle(info.outcome, info.outOfRotationMs > 0 ? info.outOfRotationMs / 1000 : null),
    ),
    guard.on('pause', (pause) => sink.pause(pause.signal, Math.max(0, pause.pausedMs) / 1000)),
    guard.on('participant', (call) =>
      sink.participant(call.name, call.step, call.outcome, Math.max(0, call.durationMs) / 1000),
    ),
    guard.on('error', (error) => sink.sourceError(errorCodeLabel(String(error.code)))),
    guard.on('approved', () => sink.approval()),
  ];
  sink.state(guard.state, guard.isReady());
  return () => {
    for (const off of offs.splice(0)) off();
  };
}
