import { delay } from '../../process.js';
import type { CloudPlaybook, FreezePlan, Scenario } from '../../types.js';
import { startAzureSimulator } from './emulator.js';
import {
  MINIMUM_NOTICE_MS,
  type SimEvent,
  type Simulator,
  type SimulatorOptions,
} from './types.js';

/*
 * What Azure does, played on its emulator: the scenarios named after its real events,
 * and a Freeze as a rehearsal plays it (scheduled, approved or due, Started, removed).
 */

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

/** Azure's real minimum notice for `type`, divided by `scale`. */
function notice(type: string, scale: number): number {
  return (MINIMUM_NOTICE_MS[type] ?? 15 * 60_000) / scale;
}

const SCENARIOS: Record<ScenarioName, Scenario<Simulator, SimEvent[]>> = {
  'live-migration': {
    summary: 'Freeze of 5 s for a memory-preserving live migration, 15 min notice',
    run: (sim, scale) => [
      sim.schedule({
        type: 'Freeze',
        durationInSeconds: 5,
        notBeforeInMs: notice('Freeze', scale),
        completeAfterMs: 5_000,
      }),
    ],
  },
  'host-maintenance': {
    summary: 'Freeze of 9 s for host maintenance, 15 min notice',
    run: (sim, scale) => [
      sim.schedule({
        type: 'Freeze',
        durationInSeconds: 9,
        description: 'Host server is undergoing maintenance.',
        notBeforeInMs: notice('Freeze', scale),
        completeAfterMs: 9_000,
      }),
    ],
  },
  'user-reboot': {
    summary: 'Reboot requested by a user, unknown duration, 15 min notice',
    run: (sim, scale) => [
      sim.schedule({
        type: 'Reboot',
        source: 'User',
        durationInSeconds: -1,
        notBeforeInMs: notice('Reboot', scale),
      }),
    ],
  },
  redeploy: {
    summary: 'Redeploy to another host, 10 min notice',
    run: (sim, scale) => [
      sim.schedule({
        type: 'Redeploy',
        durationInSeconds: -1,
        notBeforeInMs: notice('Redeploy', scale),
      }),
    ],
  },
  preempt: {
    summary: 'Spot eviction with the 30 s minimum notice',
    run: (sim, scale) => [
      sim.schedule({
        type: 'Preempt',
        durationInSeconds: -1,
        notBeforeInMs: notice('Preempt', scale),
      }),
    ],
  },
  terminate: {
    summary: 'Scale-set instance deletion, 5 min notice (configurable 5–15 min on Azure)',
    run: (sim, scale) => [
      sim.schedule({
        type: 'Terminate',
        durationInSeconds: -1,
        notBeforeInMs: notice('Terminate', scale),
      }),
    ],
  },
  'cancelled-maintenance': {
    summary: 'Freeze announced, then withdrawn half-way through the notice',
    run: (sim, scale) => {
      const n = notice('Freeze', scale);
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
    run: (sim, scale) => [
      sim.schedule({
        type: 'Freeze',
        durationInSeconds: 5,
        resources: [sim.resourceName, `${sim.resourceName}-peer-1`, `${sim.resourceName}-peer-2`],
        notBeforeInMs: notice('Freeze', scale),
        completeAfterMs: 5_000,
      }),
    ],
  },
};

/** Resolves when the app approves `event` (true) or its NotBefore comes (false). */
function approvedOrDue(
  sim: Simulator,
  event: SimEvent,
  mark: (what: string) => void,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    let approved = false;
    const onApproved = (a: { eventId: string }) => {
      if (a.eventId !== event.EventId) return;
      approved = true;
      mark('the app approved the event (StartRequests)');
      finish();
    };
    const timer = setTimeout(
      () => {
        mark('NotBefore reached');
        finish();
      },
      Math.max(0, event.notBefore - Date.now()),
    );
    const onAbort = () => {
      finish();
      reject(signal?.reason);
    };
    function finish() {
      clearTimeout(timer);
      sim.off('approved', onApproved);
      signal?.removeEventListener('abort', onAbort);
      resolve(approved);
    }
    sim.on('approved', onApproved);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Azure: Scheduled Events, its scenarios, and a Freeze the app may approve.
 *
 * @example
 * ```ts
 * const sim = await azure.start({ resourceName: 'vm-1' });
 * azure.scenarios.preempt.run(sim, 60); // a Preempt, 0.5 s notice
 * ```
 */
export const azure: CloudPlaybook<Simulator, SimulatorOptions, ScenarioName, SimEvent[]> = {
  cloud: 'azure',
  start: startAzureSimulator,
  scenarios: SCENARIOS,
  announceFreeze(sim: Simulator, plan: FreezePlan, mark: (what: string) => void) {
    const seconds = Math.ceil(plan.freezeMs / 1000);
    const event = sim.schedule({
      type: 'Freeze',
      notBeforeInMs: plan.noticeMs,
      durationInSeconds: seconds,
      autoStart: false,
      ...(plan.resources ? { resources: plan.resources } : {}),
    });
    mark(
      `Freeze ${event.EventId} scheduled, NotBefore in ${(plan.noticeMs / 1000).toFixed(1)} s, ${seconds} s long`,
    );
    return {
      eventId: event.EventId,
      async go() {
        const approved = await approvedOrDue(sim, event, mark, plan.signal);
        sim.start(event.EventId);
        mark('event Started');
        await delay(250, plan.signal);
        return approved;
      },
      done() {
        sim.complete(event.EventId);
        mark('event removed from the document');
      },
    };
  },
};
