import { delay } from '../../process.js';
import type { CloudPlaybook, Scenario } from '../../types.js';
import { type GcpSimulator, type GcpSimulatorOptions, startGcpSimulator } from './emulator.js';

/*
 * What GCE does, played on its metadata server emulator: the scenarios named after its
 * real events, a live migration as a freeze (MIGRATE announced, the blackout, NONE) and a
 * preemption as a shutdown.
 */

/** GCE scenarios. */
export type GcpScenarioName =
  | 'gce-live-migration'
  | 'gce-preemption'
  | 'gce-host-maintenance-terminate'
  | 'gce-upcoming-maintenance';

function later(ms: number, fn: () => void): void {
  setTimeout(fn, Math.max(0, ms)).unref();
}

const SCENARIOS: Record<GcpScenarioName, Scenario<GcpSimulator, void>> = {
  'gce-live-migration': {
    summary:
      'maintenance-event MIGRATE_ON_HOST_MAINTENANCE 60 s before a live migration, back to NONE after it',
    run: (sim, scale) => {
      sim.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
      later(60_000 / scale + 2_000, () => sim.setMaintenanceEvent('NONE'));
    },
  },
  'gce-preemption': {
    summary: 'preempted TRUE: a Spot/preemptible VM is stopped 30 s later',
    run: (sim) => sim.setPreempted(true),
  },
  'gce-host-maintenance-terminate': {
    summary: 'maintenance-event TERMINATE_ON_HOST_MAINTENANCE: the VM is stopped 60 s later',
    run: (sim) => sim.setMaintenanceEvent('TERMINATE_ON_HOST_MAINTENANCE'),
  },
  'gce-upcoming-maintenance': {
    summary: 'upcoming-maintenance: a scheduled window opening in 1 h (PENDING, reschedulable)',
    run: (sim, scale) => {
      const start = Math.ceil((Date.now() + 3_600_000 / scale) / 1000) * 1000;
      sim.setUpcomingMaintenance({
        type: 'SCHEDULED',
        canReschedule: true,
        windowStartTime: new Date(start).toISOString(),
        windowEndTime: new Date(start + 3_600_000 / scale).toISOString(),
        maintenanceStatus: 'PENDING',
      });
    },
  },
};

/**
 * GCE: the metadata server, its scenarios, a live migration and a preemption.
 *
 * @example
 * ```ts
 * const sim = await gcp.start({});
 * gcp.scenarios['gce-preemption'].run(sim, 1); // preempted TRUE
 * ```
 */
export const gcp: CloudPlaybook<GcpSimulator, GcpSimulatorOptions, GcpScenarioName, void> = {
  cloud: 'gcp',
  start: startGcpSimulator,
  scenarios: SCENARIOS,
  announceFreeze(sim, plan, mark) {
    sim.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
    mark(
      `GCE live migration announced (maintenance-event MIGRATE_ON_HOST_MAINTENANCE), blackout in ${(plan.noticeMs / 1000).toFixed(1)} s`,
    );
    return {
      eventId: 'maintenance-event',
      async go() {
        await delay(plan.noticeMs, plan.signal);
        return false;
      },
      done() {
        sim.setMaintenanceEvent('NONE');
        mark('maintenance-event back to NONE');
      },
    };
  },
  announceShutdown(sim, noticeMs, mark) {
    sim.setPreempted(true);
    mark('GCE preemption: preempted TRUE');
    return noticeMs;
  },
};
