import type { AwsSimulator } from './aws.js';
import type { GcpSimulator } from './gcp.js';
import { delay, freezeProcess, signalTree } from './process-freeze.js';

/**
 * Scenarios and rehearsals for the GCE and EC2 emulators, named after the real events.
 * (Azure's are in scenarios.ts and drill.ts.)
 */

/** GCE scenarios. */
export type GcpScenarioName =
  | 'gce-live-migration'
  | 'gce-preemption'
  | 'gce-host-maintenance-terminate'
  | 'gce-upcoming-maintenance';

/** EC2 scenarios. */
export type AwsScenarioName =
  | 'ec2-spot-interruption'
  | 'ec2-system-reboot'
  | 'ec2-system-maintenance'
  | 'ec2-instance-retirement'
  | 'ec2-rebalance-recommendation';

interface Spec<S> {
  readonly summary: string;
  readonly run: (sim: S, scale: number) => void;
}

function later(ms: number, fn: () => void): void {
  setTimeout(fn, Math.max(0, ms)).unref();
}

const GCP: Record<GcpScenarioName, Spec<GcpSimulator>> = {
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

const AWS: Record<AwsScenarioName, Spec<AwsSimulator>> = {
  'ec2-spot-interruption': {
    summary: 'spot/instance-action terminate, 2 minutes ahead',
    run: (sim, scale) => {
      sim.interruptSpot({ action: 'terminate', inMs: 120_000 / scale });
    },
  },
  'ec2-system-reboot': {
    summary: 'scheduled system-reboot (host maintenance) 15 min ahead, completed 1 min after',
    run: (sim, scale) => {
      const ev = sim.scheduleEvent({ code: 'system-reboot', notBeforeInMs: 900_000 / scale });
      later(960_000 / scale, () => sim.completeEvent(ev.EventId));
    },
  },
  'ec2-system-maintenance': {
    summary: 'scheduled system-maintenance (network/power) 15 min ahead, completed 1 min after',
    run: (sim, scale) => {
      const ev = sim.scheduleEvent({ code: 'system-maintenance', notBeforeInMs: 900_000 / scale });
      later(960_000 / scale, () => sim.completeEvent(ev.EventId));
    },
  },
  'ec2-instance-retirement': {
    summary: 'scheduled instance-retirement (degraded hardware) 2 weeks ahead',
    run: (sim, scale) => {
      sim.scheduleEvent({ code: 'instance-retirement', notBeforeInMs: (14 * 86_400_000) / scale });
    },
  },
  'ec2-rebalance-recommendation': {
    summary: 'events/recommendations/rebalance: elevated risk of a Spot interruption',
    run: (sim) => {
      sim.recommendRebalance();
    },
  },
};

/** Scenario names per cloud. */
export const CLOUD_SCENARIO_NAMES: {
  readonly gcp: readonly GcpScenarioName[];
  readonly aws: readonly AwsScenarioName[];
} = {
  gcp: Object.keys(GCP) as GcpScenarioName[],
  aws: Object.keys(AWS) as AwsScenarioName[],
};

/**
 * One line describing a GCE or EC2 scenario.
 *
 * @example
 * ```ts
 * cloudScenarioSummary('aws', 'ec2-spot-interruption'); // 'spot/instance-action terminate, 2 minutes ahead'
 * ```
 */
export function cloudScenarioSummary(cloud: 'gcp' | 'aws', name: string): string {
  const spec = (cloud === 'gcp' ? GCP : AWS)[name as never] as Spec<unknown> | undefined;
  if (!spec) throw new TypeError(unknown(cloud, name));
  return spec.summary;
}

function unknown(cloud: 'gcp' | 'aws', name: string): string {
  return `unknown ${cloud} scenario ${JSON.stringify(name)}; known: ${CLOUD_SCENARIO_NAMES[cloud].join(', ')}`;
}

/**
 * Plays a GCE or EC2 scenario on its emulator, real notices divided by `timeScale`.
 *
 * @example
 * ```ts
 * const sim = await startSimulator({ cloud: 'aws' });
 * runCloudScenario(sim, 'ec2-spot-interruption', { timeScale: 4 }); // 30 s notice
 * ```
 */
export function runCloudScenario(
  sim: GcpSimulator | AwsSimulator,
  name: string,
  options: { readonly timeScale?: number } = {},
): void {
  const scale = options.timeScale ?? 1;
  if (!(scale > 0))
    throw new TypeError(`Invalid option \`timeScale\`: must be > 0 (got ${options.timeScale})`);
  if (sim.cloud === 'gcp') {
    const spec = GCP[name as GcpScenarioName];
    if (!spec) throw new TypeError(unknown('gcp', name));
    spec.run(sim, scale);
  } else {
    const spec = AWS[name as AwsScenarioName];
    if (!spec) throw new TypeError(unknown('aws', name));
    spec.run(sim, scale);
  }
}

/** Options of {@link rehearseCloudFreeze}. */
export interface CloudRehearsalOptions {
  readonly sim: GcpSimulator | AwsSimulator;
  /** The app's pid; when it leads a process group the whole group is stopped. */
  readonly pid: number;
  readonly freezeMs: number;
  /** Announcement to SIGSTOP. */
  readonly noticeMs: number;
  readonly mark?: (what: string) => void;
  readonly onStop?: () => void;
  readonly onContinue?: () => void;
  readonly signal?: AbortSignal;
}

/**
 * The freeze-like event of GCE or EC2, played on a real process: GCE live migration
 * (`maintenance-event` MIGRATE, the blackout as SIGSTOP after the notice, back to `NONE`)
 * or EC2 `system-maintenance` (scheduled at now + notice, SIGSTOP at NotBefore, then
 * `completed`). The process is always continued, even when aborted.
 *
 * @example
 * ```ts
 * await rehearseCloudFreeze({ sim, pid: app.pid, freezeMs: 3000, noticeMs: 8000 });
 * ```
 */
export async function rehearseCloudFreeze(
  options: CloudRehearsalOptions,
): Promise<{ eventId: string; approved: false; stopAt: number; continueAt: number }> {
  const { sim, pid, freezeMs, noticeMs } = options;
  const mark = options.mark ?? (() => {});
  let eventId: string;
  let finish: () => void;
  if (sim.cloud === 'gcp') {
    sim.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
    eventId = 'maintenance-event';
    mark(
      `GCE live migration announced (maintenance-event MIGRATE_ON_HOST_MAINTENANCE), blackout in ${(noticeMs / 1000).toFixed(1)} s`,
    );
    finish = () => {
      sim.setMaintenanceEvent('NONE');
      mark('maintenance-event back to NONE');
    };
  } else {
    const ev = sim.scheduleEvent({ code: 'system-maintenance', notBeforeInMs: noticeMs });
    eventId = ev.EventId;
    mark(`EC2 system-maintenance ${ev.EventId} scheduled, NotBefore ${ev.NotBefore}`);
    finish = () => {
      sim.completeEvent(ev.EventId);
      mark(`${ev.EventId} completed`);
    };
  }
  await delay(noticeMs, options.signal);
  const { stopAt, continueAt } = await freezeProcess(pid, freezeMs, options, mark);
  finish();
  return { eventId, approved: false, stopAt, continueAt };
}

/**
 * A shutdown event played on a real process: EC2 Spot interruption (`spot/instance-action`
 * at now + notice) or GCE preemption (`preempted` TRUE). At the time the instance goes
 * away: the process group is stopped (SIGSTOP), as a powered-off host answers nothing.
 * Resolves then, with the moments in `performance.now()` ms; the caller ends the process.
 *
 * @example
 * ```ts
 * const r = await rehearseShutdown({ sim, pid: app.pid, noticeMs: 10_000 });
 * ```
 */
export async function rehearseShutdown(options: {
  readonly sim: GcpSimulator | AwsSimulator;
  readonly pid: number;
  readonly noticeMs: number;
  readonly mark?: (what: string) => void;
  readonly signal?: AbortSignal;
}): Promise<{ announcedAt: number; goneAt: number }> {
  const mark = options.mark ?? (() => {});
  const announcedAt = performance.now();
  let goneIn = options.noticeMs;
  if (options.sim.cloud === 'aws') {
    const n = options.sim.interruptSpot({ action: 'terminate', inMs: options.noticeMs });
    mark(`EC2 Spot interruption: ${n.action} at ${n.time}`);
    // The notice carries whole seconds: the instance goes at that time, not later.
    goneIn = Date.parse(n.time) - Date.now();
  } else {
    options.sim.setPreempted(true);
    mark('GCE preemption: preempted TRUE');
  }
  await delay(goneIn, options.signal);
  signalTree(options.pid, 'SIGSTOP');
  mark('instance gone (SIGSTOP)');
  return { announcedAt, goneAt: performance.now() };
}
