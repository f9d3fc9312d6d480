import { MINIMUM_NOTICE_MS, type SimEvent, type Simulator } from './simulator.js';

/** Named rehearsals of what Azure does. */
export type ScenarioName =
  | 'live-migration'
  | 'host-maintenance'
  | 'user-reboot'
  | 'redeploy'
  | 'preempt'
  | 'terminate'
  | 'cancelled-maintenance'
  | 'availability-set';

interface ScenarioSpec {
  readonly summary: string;
  readonly run: (sim: Simulator, notice: (type: string) => number) => SimEvent[];
}

const SCENARIOS: Record<ScenarioName, ScenarioSpec> = {
  'live-migration': {
    summary: 'Freeze of 5 s for a memory-preserving live migration, 15 min notice',
    run: (sim, notice) => [
      sim.schedule({
        type: 'Freeze',
        durationInSeconds: 5,
        notBeforeInMs: notice('Freeze'),
        completeAfterMs: 5_000,
      }),
    ],
  },
  'host-maintenance': {
    summary: 'Freeze of 9 s for host maintenance, 15 min notice',
    run: (sim, notice) => [
      sim.schedule({
        type: 'Freeze',
        durationInSeconds: 9,
        description: 'Host server is undergoing maintenance.',
        notBeforeInMs: notice('Freeze'),
        completeAfterMs: 9_000,
      }),
    ],
  },
  'user-reboot': {
    summary: 'Reboot requested by a user, unknown duration, 15 min notice',
    run: (sim, notice) => [
      sim.schedule({
        type: 'Reboot',
        source: 'User',
        durationInSeconds: -1,
        notBeforeInMs: notice('Reboot'),
      }),
    ],
  },
  redeploy: {
    summary: 'Redeploy to another host, 10 min notice',
    run: (sim, notice) => [
      sim.schedule({ type: 'Redeploy', durationInSeconds: -1, notBeforeInMs: notice('Redeploy') }),
    ],
  },
  preempt: {
    summary: 'Spot eviction with the 30 s minimum notice',
    run: (sim, notice) => [
      sim.schedule({ type: 'Preempt', durationInSeconds: -1, notBeforeInMs: notice('Preempt') }),
    ],
  },
  terminate: {
    summary: 'Scale-set instance deletion, 5 min notice (configurable 5–15 min on Azure)',
    run: (sim, notice) => [
      sim.schedule({
        type: 'Terminate',
        durationInSeconds: -1,
        notBeforeInMs: notice('Terminate'),
      }),
    ],
  },
  'cancelled-maintenance': {
    summary: 'Freeze announced, then withdrawn half-way through the notice',
    run: (sim, notice) => {
      const n = notice('Freeze');
      const ev = sim.schedule({
        type: 'Freeze',
        durationInSeconds: 5,
        notBeforeInMs: n,
        autoStart: false,
      });
      const t = setTimeout(() => {
        if (sim.events().some((e) => e.EventId === ev.EventId)) sim.cancel(ev.EventId);
      }, n / 2);
      t.unref();
      return [ev];
    },
  },
  'availability-set': {
    summary: 'One Freeze listing this VM and two others of its availability set',
    run: (sim, notice) => [
      sim.schedule({
        type: 'Freeze',
        durationInSeconds: 5,
        resources: [sim.resourceName, `${sim.resourceName}-peer-1`, `${sim.resourceName}-peer-2`],
        notBeforeInMs: notice('Freeze'),
        completeAfterMs: 5_000,
      }),
    ],
  },
};

/** Names and one-line summaries of every scenario. */
export const SCENARIO_NAMES: readonly ScenarioName[] = Object.keys(SCENARIOS) as ScenarioName[];

/**
 * One line describing a scenario.
 *
 * @example
 * ```ts
 * scenarioSummary('preempt'); // 'Spot eviction with the 30 s minimum notice'
 * ```
 */
export function scenarioSummary(name: ScenarioName): string {
  return SCENARIOS[name].summary;
}

/**
 * Plays a scenario on a running emulator with Azure's real minimum notices divided by
 * `timeScale` (60 turns 15 minutes into 15 seconds). Events start at NotBefore on their
 * own and the freezes leave the document after their duration.
 *
 * @example
 * ```ts
 * const sim = await startSimulator();
 * runScenario(sim, 'live-migration', { timeScale: 60 }); // Freeze in 15 s
 * ```
 */
export function runScenario(
  sim: Simulator,
  name: ScenarioName,
  options: { readonly timeScale?: number } = {},
): SimEvent[] {
  const spec = SCENARIOS[name];
  if (!spec)
    throw new TypeError(
      `unknown scenario ${JSON.stringify(name)}; known: ${SCENARIO_NAMES.join(', ')}`,
    );
  const scale = options.timeScale ?? 1;
  if (!(scale > 0))
    throw new TypeError(`Invalid option \`timeScale\`: must be > 0 (got ${options.timeScale})`);
  return spec.run(sim, (type) => (MINIMUM_NOTICE_MS[type] ?? 15 * 60_000) / scale);
}
