import { isoTime, isShutdownEvent } from '../event.js';
import type { PauseSignal } from '../time/pause.js';
import type { Cycle } from './cycle.js';
import {
  type FleetActions,
  fleetApprovals,
  NO_FLEET_ACTIONS,
  slotActions,
  slotRelease,
} from './fleet-policy.js';
import type { TrackedEvent } from './tracker.js';
import type { ApprovalPolicy, CycleOutcome, DrainState, GuardState, ResumeWhen } from './types.js';

/**
 * The lifecycle's decisions, as pure functions of what the guard has observed. The guard
 * owns timers, the source, the pause detector, the participants and the fleet; it calls
 * {@link decide} after every document, pause, timer, fleet answer and finished step, and
 * runs the {@link Decision}. Nothing here reads a clock or does I/O, so every rule is
 * testable with generated sequences. The fleet's rules are in `fleet-policy.ts`.
 *
 * The rules:
 * - an event is admitted into a cycle (preparing starts) at NotBefore − leadTime, or at
 *   once when it is already `Started` or has no NotBefore;
 * - the freeze of an event is a process- or VM-wide pause (never a main-thread stall,
 *   never a backwards clock step) that began after the last document listing the event
 *   as `Scheduled`, confirmed by a document listing it `Started` (or no longer listing
 *   it): Azure always starts an event before it freezes the VM;
 * - an event is over when it leaves the document or shows any status other than
 *   `Scheduled`/`Started`, or (`resumeWhen: 'after-pause'`) once its freeze was observed;
 * - an event in a cycle whose NotBefore moves beyond the lead time leaves the cycle and
 *   is scheduled again; a cycle left with no event resumes, cancelled;
 * - a handled event (its cycle resumed while it was still listed) is ignored until it is
 *   seen `Started` after that; a new EventId that is `Started` when first seen, for the
 *   same type and resources as an event that just ran, is the same maintenance;
 * - fail-safe (`maxHoldMs`): an event `Started` that long with no pause observed, or a
 *   source blind that long past NotBefore, no longer holds the cycle;
 * - approval needs a cycle whose every participant prepared and an instance out of
 *   rotation for the configured drain delay (never one still serving), never for an event
 *   naming another VM under `solo`; under `fleet`, the fleet names the member that
 *   approves.
 */

/** A pause as the policy sees it. `stall`s are passed in too and never count. */
export interface ObservedPause {
  readonly signal: PauseSignal;
  readonly detectedAt: number;
  readonly pausedMs: number;
  /** Wall clock minus monotonic change over the pause (for `ResumeContext.clockStepMs`). */
  readonly clockStepMs: number;
  /**
   * How many documents had been read when it was detected. A process or VM pause cannot
   * overlap a read, so every document up to this one was read before it began.
   */
  readonly seq: number;
}

/** An event whose cycle resumed while it was still listed. */
export interface HandledMark {
  readonly id: string;
  readonly eventType: string;
  readonly resources: readonly string[];
  /** Its status when the cycle resumed. */
  readonly status: string;
  /** Its freeze was observed or it was seen Started: it ran. */
  readonly ran: boolean;
  readonly at: number;
  /** Documents read when it was marked. */
  readonly seq: number;
}

/** The options the policy reads. */
export interface PolicyOptions {
  readonly leadTimeMs: number;
  readonly maxHoldMs: number;
  readonly resumeWhen: ResumeWhen;
  readonly approve: ApprovalPolicy;
  /** False when the source cannot approve (GCE, EC2). */
  readonly canApprove: boolean;
  /**
   * The configured drain delay: an approval brings the freeze forward, so it waits until
   * the load balancer has had this long to take the instance out, even when a short
   * notice compressed the prepare.
   */
  readonly drainDelayMs: number;
  /** A fleet coordinator is configured: a cycle asks it for a drain slot. */
  readonly fleet: boolean;
}

/**
 * The policy's options from the guard's.
 *
 * @example
 * ```ts
 * const options = policyOptions(resolveGuardOptions({ approve: 'solo' }), source, false);
 * ```
 */
export function policyOptions(
  o: Omit<PolicyOptions, 'canApprove' | 'fleet'>,
  source: { readonly supportsApproval?: boolean },
  fleet: boolean,
): PolicyOptions {
  const { leadTimeMs, maxHoldMs, resumeWhen, approve, drainDelayMs } = o;
  const canApprove = source.supportsApproval !== false;
  return { leadTimeMs, maxHoldMs, resumeWhen, approve, drainDelayMs, canApprove, fleet };
}

/** Everything a decision depends on. */
export interface PolicyInput {
  readonly now: number;
  readonly options: PolicyOptions;
  readonly resourceName: string | undefined;
  readonly events: readonly TrackedEvent[];
  readonly handled: ReadonlyMap<string, HandledMark>;
  /** Maintenances that ran recently (kept after their events left), for new EventIds of them. */
  readonly recent: readonly HandledMark[];
  readonly cycle: Cycle | null;
  /** EventIds approved or being approved. */
  readonly approvalsSent: ReadonlySet<string>;
  readonly pauses: readonly ObservedPause[];
  /** Wall-clock time of the last good document, or null. */
  readonly lastDocumentAt: number | null;
  /** Documents read so far. */
  readonly seq: number;
  /**
   * What the `traffic` participants know of the balancers: `none` when none can tell (no
   * HTTP adapter), else the least settled of their {@link DrainState}s.
   */
  readonly drain: DrainState | 'none';
}

/** How often a drain the balancers have not confirmed yet is looked at again. */
export const DRAIN_LOOK_MS = 100;

/** What to do now. */
export interface Decision {
  readonly state: GuardState;
  /** Events to prepare for now: they open a cycle, or join the open one. */
  readonly admit: readonly string[];
  /** Events that leave the cycle without having happened (rescheduled, no longer ours). */
  readonly release: readonly { readonly id: string; readonly why: string }[];
  /** Resume the cycle now. */
  readonly resume: {
    readonly outcome: Exclude<CycleOutcome, 'shutdown'>;
    readonly why: string;
  } | null;
  /** Events to approve now (for `fleet`, those the fleet said this member approves). */
  readonly approve: readonly string[];
  /** What to ask of the fleet coordinator. */
  readonly fleet: FleetActions;
  /** Emit `shutdown` (and the cycle's end): the VM will not come back. */
  readonly announceShutdown: boolean;
  /** New handled marks (a new EventId that repeats a maintenance that just ran). */
  readonly markHandled: readonly HandledMark[];
  /** Call `decide` again at this wall-clock time at the latest. */
  readonly wakeAt: number;
}

/** How long a maintenance that just ran is remembered for recognising a new EventId of it. */
export const ALIAS_WINDOW_MS = 10 * 60_000;

/** When preparing for `t` starts: NotBefore − leadTime, or now when it started or has no NotBefore. */
export function prepareAt(t: TrackedEvent, leadTimeMs: number): number {
  if (t.event.status === 'Started' || t.event.notBefore === null) return Number.NEGATIVE_INFINITY;
  return t.event.notBefore - leadTimeMs;
}

/**
 * The freeze of `t` was observed: a process/VM-wide forward pause detected after the
 * last document listing `t` as Scheduled (or after it was first seen), and a document
 * has listed it Started since. Ordered by document sequence, not by wall clock, which
 * an NTP step can move backwards.
 */
export function freezeObserved(t: TrackedEvent, pauses: readonly ObservedPause[]): boolean {
  if (t.startedSeq === null) return false;
  const after = t.lastScheduledSeq ?? t.firstSeenSeq;
  return pauses.some((p) => countsAsPause(p) && p.seq >= after);
}

/** A pause counted since the event was last seen Scheduled (or first seen). */
function pausedSinceScheduled(t: TrackedEvent, pauses: readonly ObservedPause[]): boolean {
  const after = t.lastScheduledSeq ?? t.firstSeenSeq;
  return pauses.some((p) => countsAsPause(p) && p.seq >= after);
}

/** Stalls and backwards steps are never the freeze. */
export function countsAsPause(p: ObservedPause): boolean {
  return p.signal !== 'stall' && p.pausedMs > 0;
}

function isHandled(
  t: TrackedEvent,
  handled: ReadonlyMap<string, HandledMark>,
): HandledMark | undefined {
  const mark = handled.get(t.id);
  if (!mark) return undefined;
  // Seen Started after its cycle resumed: the platform is (re)starting it, drain again.
  if (t.startedSeq !== null && t.startedSeq > mark.seq) return undefined;
  return mark;
}

function sameResources(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((r) => set.has(r));
}

/**
 * Decides what the guard does next. Pure: same input, same decision.
 *
 * @example
 * ```ts
 * const d = decide({ now, options, resourceName, events: tracker.list(), handled, cycle, pauses, lastDocumentAt, drain: 'none' });
 * if (d.resume) resumeCycle(d.resume.outcome);
 * ```
 */
export function decide(input: PolicyInput): Decision {
  const { now, options: o, events, cycle } = input;
  const byId = new Map(events.map((t) => [t.id, t]));
  const handled = new Map(input.handled);
  const markHandled: HandledMark[] = [];
  const inCycle = new Set(cycle?.ids ?? []);
  let wakeAt = Number.POSITIVE_INFINITY;

  // A new EventId, Started when first seen, repeating a maintenance that just ran: one
  // that ran before (`recent`), or this cycle's own whose freeze was already felt (Azure
  // may renew an id at Scheduled -> Started, and the freeze can come before that document).
  const ranNow: HandledMark[] = [];
  for (const id of cycle && !cycle.local ? cycle.ids : []) {
    const c = byId.get(id);
    if (!c || !(c.startedAt !== null || pausedSinceScheduled(c, input.pauses))) continue;
    ranNow.push({
      id: c.id,
      eventType: c.event.kind,
      resources: [...c.event.resources],
      status: c.event.status,
      ran: true,
      at: now,
      seq: input.seq,
    });
  }
  for (const t of events) {
    if (!t.relevant || !t.active || handled.has(t.id) || inCycle.has(t.id)) continue;
    // Only an id never seen Scheduled: one that was is a maintenance of its own.
    if (t.event.status !== 'Started' || t.lastScheduledSeq !== null) continue;
    for (const mark of [...input.recent, ...ranNow]) {
      if (
        mark.ran &&
        mark.eventType === t.event.kind &&
        now - mark.at <= ALIAS_WINDOW_MS &&
        sameResources(mark.resources, t.event.resources)
      ) {
        const alias: HandledMark = {
          ...mark,
          id: t.id,
          status: 'Started',
          at: now,
          seq: input.seq,
        };
        markHandled.push(alias);
        handled.set(t.id, alias);
        break;
      }
    }
  }

  // Events due for preparing, and the next one that will be.
  const admit: string[] = [];
  let pending = false;
  for (const t of events) {
    if (!t.relevant || !t.active || inCycle.has(t.id) || isHandled(t, handled)) continue;
    const at = prepareAt(t, o.leadTimeMs);
    if (at <= now) admit.push(t.id);
    else {
      pending = true;
      wakeAt = Math.min(wakeAt, at);
    }
  }

  const quiet = { release: [], resume: null, approve: [], announceShutdown: false } as const;
  if (!cycle) {
    const opening = admit.length > 0;
    return {
      ...quiet,
      state: opening ? 'preparing' : pending ? 'scheduled' : 'idle',
      admit,
      fleet: { ...NO_FLEET_ACTIONS, askSlot: o.fleet && opening },
      markHandled,
      wakeAt,
    };
  }
  if (cycle.resuming) {
    // New events wait for the resume to finish; they open the next cycle.
    const release = slotRelease(cycle);
    return {
      ...quiet,
      state: 'resuming',
      admit: [],
      fleet: { ...NO_FLEET_ACTIONS, release },
      markHandled,
      wakeAt,
    };
  }

  const release: { id: string; why: string }[] = [];
  const members: TrackedEvent[] = [];
  for (const id of cycle.ids) {
    // An event the tracker forgot is over (so is the one of `guard.shutdown()`).
    const t = byId.get(id);
    if (!t) continue;
    const approved = input.approvalsSent.has(id);
    if (
      t.active &&
      t.event.status === 'Scheduled' &&
      t.event.notBefore !== null &&
      t.event.notBefore - now > o.leadTimeMs &&
      !approved
    ) {
      release.push({
        id,
        why: `rescheduled: NotBefore ${isoTime(t.event.notBefore)} is beyond the lead time`,
      });
      continue;
    }
    if (t.active && !t.relevant) {
      release.push({ id, why: `no longer concerns this VM: ${t.reason}` });
      continue;
    }
    members.push(t);
  }
  for (const id of admit) members.push(byId.get(id)!);

  let allOver = !cycle.local;
  let failsafe: string | null = null;
  let happened = false;
  for (const t of members) {
    const observed = freezeObserved(t, input.pauses);
    // Approved, then a pause: the freeze came before any Started document did.
    if (
      observed ||
      t.startedAt !== null ||
      (input.approvalsSent.has(t.id) && pausedSinceScheduled(t, input.pauses))
    )
      happened = true;
    if (!t.active) continue;
    if (isShutdownEvent(t.event.kind)) {
      allOver = false;
      continue;
    }
    if (o.resumeWhen === 'after-pause' && observed) continue;
    if (t.startedAt !== null && !observed) {
      const until = t.startedAt + o.maxHoldMs;
      if (now >= until) {
        failsafe ??= `event ${t.id} Started ${o.maxHoldMs} ms ago and no pause was observed (maxHoldMs fail-safe)`;
        continue;
      }
      wakeAt = Math.min(wakeAt, until);
    }
    if (input.lastDocumentAt !== null && t.event.notBefore !== null) {
      const blindUntil = Math.max(input.lastDocumentAt, t.event.notBefore) + o.maxHoldMs;
      if (now >= blindUntil) {
        failsafe ??= `no document for ${o.maxHoldMs} ms past the NotBefore of event ${t.id} (maxHoldMs fail-safe)`;
        continue;
      }
      wakeAt = Math.min(wakeAt, blindUntil);
    }
    allOver = false;
  }

  if (allOver) {
    const outcome = failsafe ? 'failsafe' : happened ? 'resumed' : 'cancelled';
    const why =
      failsafe ??
      (members.length === 0
        ? 'no event left in the cycle'
        : happened
          ? 'the maintenance is over'
          : 'every event ended before it started');
    return {
      ...quiet,
      state: 'resuming',
      admit,
      release,
      resume: { outcome, why },
      fleet: NO_FLEET_ACTIONS,
      markHandled,
      wakeAt,
    };
  }

  const candidates: TrackedEvent[] = [];
  // An approval brings the freeze forward: only once the balancers let go. Confirmed by the
  // adapters that see the probes; where none can tell, after the configured drain delay
  // (a short notice that compressed the prepare does not shorten it here).
  const drainedLongEnough = cycle.drainedAt !== null && now >= cycle.drainedAt + o.drainDelayMs;
  const drained =
    cycle.drainedAt !== null &&
    (input.drain === 'confirmed' ||
      ((input.drain === 'none' || input.drain === 'unprobed') && drainedLongEnough));
  const approvable =
    cycle.prepared && !cycle.prepareFailed && o.canApprove && o.approve !== 'never';
  if (approvable && cycle.drainedAt !== null && !drained)
    wakeAt = Math.min(
      wakeAt,
      input.drain === 'none' || input.drain === 'unprobed'
        ? cycle.drainedAt + o.drainDelayMs
        : now + DRAIN_LOOK_MS,
    );
  if (approvable && drained) {
    const name = input.resourceName;
    for (const t of members) {
      const ev = t.event;
      if (!t.active || ev.status !== 'Scheduled' || input.approvalsSent.has(t.id)) continue;
      if (name === undefined || !ev.resources.includes(name)) continue;
      // Approving releases the event for every VM it lists.
      if (o.approve === 'solo' && ev.resources.length !== 1) continue;
      candidates.push(t);
    }
  }
  const slot = slotActions(cycle, now);
  wakeAt = Math.min(wakeAt, slot.wakeAt);
  const { approve, report } =
    o.approve === 'fleet'
      ? fleetApprovals(cycle, candidates, input.approvalsSent)
      : { approve: candidates.map((t) => t.id), report: [] };

  let state: GuardState;
  const shutdown = cycle.local || members.some((t) => t.active && isShutdownEvent(t.event.kind));
  if (!cycle.prepared || admit.length > 0) state = 'preparing';
  else if (shutdown) state = 'shutting-down';
  else if (members.some((t) => t.active && t.startedAt !== null)) state = 'frozen';
  else state = 'ready';
  return {
    state,
    admit,
    release,
    resume: null,
    approve,
    fleet: { askSlot: slot.askSlot, drain: slot.drain, report, release: null },
    announceShutdown: state === 'shutting-down' && !cycle.shutdownAnnounced,
    markHandled,
    wakeAt,
  };
}
