import type { CycleInfo, CycleOutcome, Guard, GuardState, PauseSignal } from '@freezeguard/core';

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
  event(eventType: string, relevant: boolean): void;
  cycle(outcome: CycleOutcome, outOfRotationSeconds: number | null): void;
  pause(signal: PauseSignal, seconds: number): void;
  participant(name: string, step: 'prepare' | 'resume', outcome: string, seconds: number): void;
  sourceError(code: string): void;
  approval(): void;
}

/**
 * Subscribes `sink` to `guard`'s events; returns the unsubscribe function. Shared by the
 * Prometheus and OpenTelemetry backends so both count exactly the same things.
 */
export function observeGuard(guard: Guard, sink: MetricsSink): () => void {
  // Ids of the latest document: an event is counted once, when it first appears.
  let listed = new Set<string>();
  const offs = [
    guard.on('state', (state) => sink.state(state, guard.isReady())),
    guard.on('event', (document) => {
      const now = new Set<string>();
      let reports: ReturnType<Guard['status']>['events'] | null = null;
      for (const event of document.Events) {
        now.add(event.EventId);
        if (listed.has(event.EventId)) continue;
        // status() only on a new event: documents change a few times per maintenance.
        reports ??= guard.status().events;
        const report = reports.find((r) => r.eventId === event.EventId);
        sink.event(event.EventType, report?.relevant ?? false);
      }
      listed = now;
    }),
    guard.on('cycle', (info: CycleInfo) =>
      sink.cycle(info.outcome, info.outOfRotationMs > 0 ? info.outOfRotationMs / 1000 : null),
    ),
    guard.on('pause', (pause) => sink.pause(pause.signal, Math.max(0, pause.pausedMs) / 1000)),
    guard.on('participant', (call) =>
      sink.participant(call.name, call.step, call.outcome, Math.max(0, call.durationMs) / 1000),
    ),
    guard.on('error', (error) => sink.sourceError(error.code ?? 'unknown')),
    guard.on('approved', () => sink.approval()),
  ];
  sink.state(guard.state, guard.isReady());
  return () => {
    for (const off of offs.splice(0)) off();
  };
}
