import { delay } from '../../process.js';
import type { CloudPlaybook, Scenario } from '../../types.js';
import { type AwsSimulator, type AwsSimulatorOptions, startAwsSimulator } from './emulator.js';

/*
 * What EC2 does, played on its IMDS emulator: the scenarios named after its real events,
 * a system-maintenance event as a freeze (scheduled, the blackout at NotBefore,
 * completed) and a Spot interruption as a shutdown.
 */

/** EC2 scenarios. */
export type AwsScenarioName =
  | 'ec2-spot-interruption'
  | 'ec2-system-reboot'
  | 'ec2-system-maintenance'
  | 'ec2-instance-retirement'
  | 'ec2-rebalance-recommendation';

function later(ms: number, fn: () => void): void {
  setTimeout(fn, Math.max(0, ms)).unref();
}

const SCENARIOS: Record<AwsScenarioName, Scenario<AwsSimulator, void>> = {
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

/**
 * EC2: IMDS, its scenarios, a system-maintenance event and a Spot interruption.
 *
 * @example
 * ```ts
 * const sim = await aws.start({ httpTokens: 'required' });
 * aws.scenarios['ec2-spot-interruption'].run(sim, 4); // 30 s notice
 * ```
 */
export const aws: CloudPlaybook<AwsSimulator, AwsSimulatorOptions, AwsScenarioName, void> = {
  cloud: 'aws',
  start: startAwsSimulator,
  scenarios: SCENARIOS,
  announceFreeze(sim, plan, mark) {
    const ev = sim.scheduleEvent({ code: 'system-maintenance', notBeforeInMs: plan.noticeMs });
    mark(`EC2 system-maintenance ${ev.EventId} scheduled, NotBefore ${ev.NotBefore}`);
    return {
      eventId: ev.EventId,
      async go() {
        await delay(plan.noticeMs, plan.signal);
        return false;
      },
      done() {
        sim.completeEvent(ev.EventId);
        mark(`${ev.EventId} completed`);
      },
    };
  },
  announceShutdown(sim, noticeMs, mark) {
    const n = sim.interruptSpot({ action: 'terminate', inMs: noticeMs });
    mark(`EC2 Spot interruption: ${n.action} at ${n.time}`);
    // The notice carries whole seconds: the instance goes at that time, not later.
    return Date.parse(n.time) - Date.now();
  },
};
