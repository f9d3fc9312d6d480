import type { AwsSimulator } from './clouds/aws/emulator.js';
import type { GcpSimulator } from './clouds/gcp/emulator.js';
import { type AnySimulator, playbookOf } from './clouds/index.js';
import { delay, freezeProcess, signalGroup } from './process.js';
import type { FreezePlan, Rehearsal } from './types.js';

/*
 * Rehearsals on a real process, whatever the cloud: each cloud's playbook announces the
 * event its own way; stopping and continuing the process is the same everywhere.
 */

/** Options of {@link rehearseFreeze}. */
export interface RehearseFreezeOptions extends FreezePlan {
  /** The emulator the app polls, of any cloud. */
  readonly sim: AnySimulator;
  /** The app's pid; when it leads a process group (spawned detached) the whole group is frozen. */
  readonly pid: number;
  /** Progress, as timeline entries. */
  readonly mark?: (what: string) => void;
  readonly onStop?: () => void;
  readonly onContinue?: () => void;
}

/** Options of a rehearsal on a GCE or EC2 emulator (the same as {@link RehearseFreezeOptions}). */
export type CloudRehearsalOptions = RehearseFreezeOptions;

/**
 * Plays one freeze on a running app the way the emulator's cloud does, stopping the process
 * (group) with SIGSTOP for `freezeMs` and resuming it with SIGCONT:
 * - Azure: a Freeze is scheduled; at the app's approval or NotBefore it is Started, the
 *   app stopped, and the event removed after.
 * - GCE: a live migration (`maintenance-event` MIGRATE, the blackout after the notice,
 *   back to `NONE`).
 * - EC2: a `system-maintenance` event (scheduled at now + notice, the blackout at
 *   NotBefore, then `completed`).
 *
 * The process is always continued, even when aborted.
 *
 * @example
 * ```ts
 * const r = await rehearseFreeze({ sim, pid: app.pid, freezeMs: 5000, noticeMs: 10_000 });
 * ```
 */
export async function rehearseFreeze(options: RehearseFreezeOptions): Promise<Rehearsal> {
  const mark = options.mark ?? (() => {});
  const announced = playbookOf(options.sim.cloud).announceFreeze(options.sim, options, mark);
  const approved = await announced.go();
  const { stopAt, continueAt } = await freezeProcess(options.pid, options.freezeMs, options, mark);
  announced.done();
  return { eventId: announced.eventId, approved, stopAt, continueAt };
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
  const playbook = playbookOf(options.sim.cloud);
  if (!playbook.announceShutdown)
    throw new TypeError(`rehearseShutdown(): no shutdown notice on ${playbook.cloud}`);
  const announcedAt = performance.now();
  const goneIn = playbook.announceShutdown(options.sim, options.noticeMs, mark);
  await delay(goneIn, options.signal);
  signalGroup(options.pid, 'SIGSTOP');
  mark('instance gone (SIGSTOP)');
  return { announcedAt, goneAt: performance.now() };
}
