/*
 * The decisions of VM-local coordination, as pure functions: which leader socket to
 * follow or which term to take, whether a relayed document is fresh, whether a leader was
 * superseded, when a silent leader is presumed gone, and who approves an event. The
 * coordinator (coordinator.ts) only carries them out; test/local-decide.test.ts checks
 * them against generated sequences.
 */

/** What the election sees: the terms of the leader sockets in the VM's directory. */
export interface ElectionView {
  /** Terms of the `t<term>.sock` files present (any order). */
  readonly terms: readonly number[];
  /** The highest term ever taken, as recorded in the directory's `epoch` file (0 if none). */
  readonly epoch: number;
  /** The highest term this process has seen. */
  readonly seen: number;
  /**
   * The newest term this process judged gone: its leader went silent past the ping, or
   * its own term was superseded. Not followed again: that leader already had its chance to
   * answer, and asking once more would add a whole wait to every takeover. 0 if none.
   */
  readonly lost?: number;
}

/**
 * What to do in an election round: follow the newest leader socket if there is one worth
 * asking (`follow`: not older than any term seen, not the one just judged gone), and the
 * term to take if that leader does not answer (`claim`). A term is taken only above every
 * term known, so the newest socket is always the latest leader and a leader that sees a
 * higher term knows it was replaced.
 *
 * @example
 * ```ts
 * electionStep({ terms: [3, 4], epoch: 4, seen: 4 }); // { follow: 4, claim: 5 }
 * electionStep({ terms: [4], epoch: 4, seen: 4, lost: 4 }); // { follow: null, claim: 5 }
 * ```
 */
export function electionStep(view: ElectionView): { follow: number | null; claim: number } {
  const top = view.terms.length > 0 ? Math.max(...view.terms) : null;
  const askable = top !== null && top >= view.seen && top > (view.lost ?? 0);
  return { follow: askable ? top : null, claim: Math.max(top ?? 0, view.epoch, view.seen) + 1 };
}

/**
 * True when a leader of `term` must step down: a socket of a higher term exists (it was
 * frozen or slow, and the others elected a successor).
 *
 * @example
 * ```ts
 * superseded(4, [4, 5]); // true
 * ```
 */
export function superseded(term: number, terms: readonly number[]): boolean {
  return terms.some((t) => t > term);
}

/**
 * Fencing: a follower accepts a relayed document only from a term at least as high as
 * any it has seen. A per-process counter would not do: a poller restarted with the same
 * id counts from 1 again, and a frozen one that comes back still counts on.
 *
 * @example
 * ```ts
 * acceptTerm(5, 4); // true
 * acceptTerm(4, 5); // false: a superseded leader
 * ```
 */
export function acceptTerm(term: number, seen: number): boolean {
  return Number.isInteger(term) && term >= seen;
}

/** What a follower's watchdog knows at one tick. */
export interface WatchdogInput {
  /** Monotonic ms now. */
  readonly now: number;
  /** When this tick was due: a tick much later than that means this process was paused. */
  readonly due: number;
  /** When the leader was last heard from (any message). */
  readonly lastHeard: number;
  /** When a ping was sent and not yet answered, or null. */
  readonly probeSentAt: number | null;
  /** Silence after which the leader is asked whether it is still there. */
  readonly suspectMs: number;
  /** How long the leader has to answer that ping. */
  readonly probeMs: number;
}

/**
 * - `ok`: the leader spoke recently;
 * - `self-paused`: this process itself was stopped (its tick is late): the silence is its
 *   own, so it listens again before judging (what the leader sent is still buffered);
 * - `probe`: silent too long: ask with a ping;
 * - `elect`: no answer to the ping in time: the leader is dead or frozen.
 *
 * @example
 * ```ts
 * watchdog({ now: 2000, due: 2000, lastHeard: 500, probeSentAt: null, suspectMs: 1200, probeMs: 400 }); // 'probe'
 * ```
 */
export function watchdog(i: WatchdogInput): 'ok' | 'self-paused' | 'probe' | 'elect' {
  if (i.now - i.due > i.suspectMs / 2) return 'self-paused';
  if (i.now - i.lastHeard < i.suspectMs) return 'ok';
  if (i.probeSentAt === null || i.probeSentAt < i.lastHeard) return 'probe';
  return i.now - i.probeSentAt >= i.probeMs ? 'elect' : 'ok';
}

/** The leader's record of one event. */
export interface EventApproval {
  /** Members that reported prepared, in order. */
  readonly prepared: readonly string[];
  /** The member asked to approve, while it has not answered. */
  readonly grantedTo: string | null;
  /** Approved (the claim was taken): never granted again. */
  readonly done: boolean;
}

/**
 * Who approves `event` now, if anyone: only once every live member has prepared for it,
 * only when nobody approved it or holds the grant, and then exactly one member: the one
 * whose report completed the set (`reporter`, it is waiting for the answer), else the
 * leader (it never waits on the channel), else the first live member to have prepared.
 * A grant held by a member that left is void, so the event is granted again.
 *
 * @example
 * ```ts
 * approver({ prepared: ['a', 'b'], grantedTo: null, done: false }, ['a', 'b'], 'a', 'b'); // 'b'
 * approver({ prepared: ['a'], grantedTo: null, done: false }, ['a', 'b'], 'a', 'a'); // null: b has not prepared
 * ```
 */
export function approver(
  event: EventApproval,
  live: readonly string[],
  leader: string,
  reporter: string | null,
): string | null {
  if (event.done || live.length === 0) return null;
  if (event.grantedTo !== null && live.includes(event.grantedTo)) return null;
  const prepared = new Set(event.prepared);
  if (!live.every((m) => prepared.has(m))) return null;
  if (reporter !== null && live.includes(reporter)) return reporter;
  if (live.includes(leader)) return leader;
  return event.prepared.find((m) => live.includes(m)) ?? null;
}
