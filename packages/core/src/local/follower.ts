import * as net from 'node:net';
import type { Clock, TimerHandle, Timers } from '../time/clock.js';
import { watchdog } from './decide.js';
import type { LocalMember, MemberView } from './leader.js';
import { socketPath } from './paths.js';
import { receive, send, type WireMessage } from './wire.js';

/**
 * What a follower needs from the coordinator.
 *
 * @example
 * ```ts
 * const f = await Follower.connect(host, 4, 1500);
 * ```
 */
export interface FollowerHost {
  readonly id: string;
  readonly dir: string;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly heartbeatMs: number;
  readonly suspectMs: number;
  readonly probeMs: number;
  selfView(): MemberView;
  /** What this process prepared for and approved, re-sent to every new leader. */
  prepared(): string[];
  claimed(): string[];
  /** A message from the leader (a document, an error, a grant, members). */
  message(message: WireMessage): void;
  /** The leader is gone (closed the connection, or silent past the probe): elect again. */
  lost(why: string): void;
}

/**
 * A connection to the leader of one term: says hello (with what this process prepared),
 * beats every `heartbeatMs`, and watches the leader: a closed connection is noticed at
 * once, a frozen leader (the socket is still there, nobody answers) after `suspectMs` of
 * silence and an unanswered ping.
 *
 * @example
 * ```ts
 * const follower = await Follower.connect(host, term, 1500);
 * const answer = await follower?.request({ t: 'prepared', eventId: 'E1' }, 1500);
 * ```
 */
export class Follower {
  readonly term: number;
  readonly #host: FollowerHost;
  readonly #socket: net.Socket;
  readonly #pending = new Map<
    number,
    { resolve: (m: WireMessage | null) => void; timer: TimerHandle }
  >();
  #rid = 0;
  #timer: TimerHandle | null = null;
  #due = 0;
  #lastHeard = 0;
  #probeSentAt: number | null = null;
  #closed = false;

  private constructor(host: FollowerHost, term: number, socket: net.Socket) {
    this.#host = host;
    this.term = term;
    this.#socket = socket;
  }

  /**
   * Connects to the leader of `term` and waits for its welcome; null when nobody answers
   * within `welcomeMs` (dead: refused; frozen: accepted but silent).
   */
  static connect(host: FollowerHost, term: number, welcomeMs: number): Promise<Follower | null> {
    return new Promise((resolve) => {
      const socket = net.connect(socketPath(host.dir, term));
      socket.unref();
      const follower = new Follower(host, term, socket);
      let settled = false;
      const done = (ok: boolean) => {
        if (settled) return;
        settled = true;
        host.timers.clearTimeout(timer);
        if (ok) resolve(follower);
        else {
          follower.#closed = true;
          socket.destroy();
          resolve(null);
        }
      };
      const timer = host.timers.setTimeout(() => done(false), welcomeMs);
      socket.on('error', () => done(false));
      socket.on('close', () => {
        if (!settled) done(false);
        else follower.#onClose();
      });
      socket.on('connect', () => {
        send(socket, {
          t: 'hello',
          id: host.id,
          pid: process.pid,
          view: host.selfView(),
          prepared: host.prepared(),
          claimed: host.claimed(),
        });
      });
      receive(socket, (m) => {
        if (!settled) {
          if (m.t === 'welcome') {
            done(true);
            follower.#lastHeard = host.clock.monotonic();
            follower.#schedule();
            host.message(m);
          }
          return;
        }
        follower.#heard(m);
      });
    });
  }

  /** Sends a message and resolves with the answer carrying the same `rid`, or null. */
  request(message: WireMessage, timeoutMs: number): Promise<WireMessage | null> {
    if (this.#closed) return Promise.resolve(null);
    const rid = ++this.#rid;
    return new Promise((resolve) => {
      const timer = this.#host.timers.setTimeout(() => {
        this.#pending.delete(rid);
        resolve(null);
      }, timeoutMs);
      this.#pending.set(rid, { resolve, timer });
      send(this.#socket, { ...message, rid });
    });
  }

  /** Sends a message that needs no answer. */
  tell(message: WireMessage): void {
    if (!this.#closed) send(this.#socket, message);
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) this.#host.timers.clearTimeout(this.#timer);
    this.#socket.destroy();
    for (const [rid, p] of this.#pending) {
      this.#host.timers.clearTimeout(p.timer);
      this.#pending.delete(rid);
      p.resolve(null);
    }
  }

  #heard(m: WireMessage): void {
    if (this.#closed) return;
    this.#lastHeard = this.#host.clock.monotonic();
    this.#probeSentAt = null;
    if (typeof m.rid === 'number') {
      const p = this.#pending.get(m.rid);
      if (p) {
        this.#pending.delete(m.rid);
        this.#host.timers.clearTimeout(p.timer);
        p.resolve(m);
        return;
      }
      // An answer nobody waits for any more (an approval after the caller's timeout) is
      // still handed on: the coordinator keeps it as a grant.
    }
    this.#host.message(m);
  }

  #onClose(): void {
    if (this.#closed) return;
    this.close();
    this.#host.lost('the leader closed the connection (it stopped or exited)');
  }

  #schedule(): void {
    this.#due = this.#host.clock.monotonic() + this.#host.heartbeatMs;
    this.#timer = this.#host.timers.setTimeout(() => this.#tick(), this.#host.heartbeatMs);
  }

  #tick(): void {
    this.#timer = null;
    if (this.#closed) return;
    const now = this.#host.clock.monotonic();
    const verdict = watchdog({
      now,
      due: this.#due,
      lastHeard: this.#lastHeard,
      probeSentAt: this.#probeSentAt,
      suspectMs: this.#host.suspectMs,
      probeMs: this.#host.probeMs,
    });
    if (verdict === 'elect') {
      this.close();
      this.#host.lost('the leader does not answer (frozen or hung)');
      return;
    }
    if (verdict === 'self-paused') {
      // This process was stopped itself: what the leader sent meanwhile is still buffered.
      this.#lastHeard = now;
      this.#probeSentAt = null;
    } else if (verdict === 'probe') {
      this.#probeSentAt = now;
      send(this.#socket, { t: 'ping' });
    }
    send(this.#socket, { t: 'hb', view: this.#host.selfView() });
    this.#schedule();
  }
}

/**
 * The members list a leader's heartbeat carries.
 *
 * @example
 * ```ts
 * const members = membersOf(message) ?? [];
 * ```
 */
export function membersOf(m: WireMessage): LocalMember[] | null {
  return Array.isArray(m.members) ? (m.members as LocalMember[]) : null;
}
