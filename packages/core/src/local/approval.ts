import { errorSummary } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Follower } from './follower.js';
import type { Leader } from './leader.js';
import { takeClaim } from './paths.js';

/** How long `prepared()` waits for the leader's answer: below the guard's 2 s fleet deadline. */
export const ANSWER_MS = 1500;
/** Marks of events older than this are forgotten (the event is long over). */
const FORGET_MS = 60 * 60_000;

/** What a process's approval side needs from the coordinator. */
export interface ApprovalHost {
  now(): number;
  logger(): Logger;
  dir(): string | null;
  leader(): Leader | null;
  follower(): Follower | null;
  /** Tells the guard to ask again (`prepared()` may answer true now). */
  notify(): void;
}

/**
 * One process's side of "one StartRequests per event per VM": what it prepared for (sent
 * again to every new leader), grants the leader pushed to it (a process left, so the set
 * became complete after this one's report), and the claim file that makes the approval
 * happen once whichever leader granted it.
 *
 * @example
 * ```ts
 * const approvals = new MemberApprovals(host);
 * if (await approvals.prepared('E1')) await source.approve('E1');
 * ```
 */
export class MemberApprovals {
  readonly #host: ApprovalHost;
  readonly #prepared = new Map<string, number>();
  readonly #claimed = new Map<string, number>();
  readonly #grants = new Set<string>();

  constructor(host: ApprovalHost) {
    this.#host = host;
  }

  get prepared(): string[] {
    return [...this.#prepared.keys()];
  }

  get claimed(): string[] {
    return [...this.#claimed.keys()];
  }

  /** The leader chose this process to approve `eventId`; the guard is told to ask again. */
  grant(eventId: string): void {
    this.#grants.add(eventId);
    this.#host.notify();
  }

  /** Records this process as prepared; true when it is the one process that approves. */
  async report(eventId: string): Promise<boolean> {
    this.#forget();
    this.#prepared.set(eventId, this.#host.now());
    if (this.#claimed.has(eventId)) return false;
    if (this.#grants.has(eventId)) return this.#claim(eventId);
    const leader = this.#host.leader();
    if (leader) return leader.preparedSelf(eventId) ? this.#claim(eventId) : false;
    const follower = this.#host.follower();
    if (!follower) return false;
    const answer = await follower.request({ t: 'prepared', eventId }, ANSWER_MS);
    if (answer?.approve === true || this.#grants.has(eventId)) return this.#claim(eventId);
    return false;
  }

  #claim(eventId: string): boolean {
    this.#grants.delete(eventId);
    const dir = this.#host.dir();
    let mine: boolean;
    try {
      mine = dir === null || takeClaim(dir, eventId);
    } catch (err) {
      this.#host
        .logger()
        .warn(
          { err: errorSummary(err), eventId },
          'freezeguard: cannot record the approval claim; approving anyway',
        );
      mine = true;
    }
    this.#claimed.set(eventId, this.#host.now());
    const leader = this.#host.leader();
    if (leader) leader.claimedSelf(eventId);
    else this.#host.follower()?.tell({ t: 'claimed', eventId });
    if (mine) {
      this.#host
        .logger()
        .info({ eventId }, 'freezeguard: every process on this VM prepared; this one approves');
    }
    return mine;
  }

  #forget(): void {
    const now = this.#host.now();
    for (const marks of [this.#prepared, this.#claimed]) {
      for (const [id, at] of marks) if (now - at > FORGET_MS) marks.delete(id);
    }
  }
}
