import * as fs from 'node:fs';
import * as net from 'node:net';
import type { MaintenanceDocument } from '../event.js';
import type { Logger } from '../logger.js';
import type { TimerHandle, Timers } from '../time/clock.js';
import { approver, type EventApproval, superseded } from './decide.js';
import { listTerms, socketPath, sweepClaims } from './paths.js';
import { receive, send, type WireMessage } from './wire.js';

/**
 * One process of the VM as the leader knows it.
 *
 * @example
 * ```ts
 * leader.members(); // [{ id: '4242-a1b2c3', pid: 4242, view, poller: true }, …]
 * ```
 */
export interface LocalMember {
  readonly id: string;
  readonly pid: number;
  readonly view: MemberView;
  readonly poller: boolean;
}

/**
 * What a member says of itself (its guard's state), for `status()`.
 *
 * @example
 * ```ts
 * const view: MemberView = { state: 'idle', ready: true, resourceName: 'vm-1' };
 * ```
 */
export interface MemberView {
  readonly state: string;
  readonly ready: boolean;
  readonly resourceName: string | null;
  /** Observe mode: never prepares, so never waited for. */
  readonly observing?: boolean;
}

interface Peer {
  id: string;
  pid: number;
  view: MemberView;
  lastSeen: number;
}

interface EventRecord extends EventApproval {
  prepared: string[];
  grantedTo: string | null;
  done: boolean;
  at: number;
}

/** How often a leader without followers looks at the directory. */
const ALONE_TICK_MS = 1000;

/**
 * What the leader needs from the coordinator.
 *
 * @example
 * ```ts
 * const leader = await Leader.open(host, 5);
 * ```
 */
export interface LeaderHost {
  readonly id: string;
  readonly dir: string;
  readonly logger: Logger;
  readonly timers: Timers;
  readonly heartbeatMs: number;
  readonly memberTtlMs: number;
  now(): number;
  selfView(): MemberView;
  /** The leader itself was chosen to approve `eventId` (a peer left, or prepared last). */
  grantSelf(eventId: string): void;
  /** A higher term exists: this leader was replaced while frozen or slow. */
  superseded(): void;
  /** This VM's name, for followers that ask (read once by the leader). */
  resourceName(): Promise<string | undefined>;
  /**
   * The processes the previous leader had (its last heartbeat), and how long to wait for
   * them to reconnect before deciding any approval: right after a takeover the registry
   * is incomplete, and a process not yet back must not be counted as absent.
   */
  readonly previous: readonly string[];
  readonly graceMs: number;
  /** What this process itself prepared for and approved before it led. */
  readonly ownPrepared: readonly string[];
  readonly ownClaimed: readonly string[];
}

const EVENT_TTL_MS = 60 * 60_000;

/**
 * The leader of one VM's processes at one term: listens on `t<term>.sock`, relays what the
 * poller reads with its term, keeps the registry of live processes (a closed connection
 * drops one at once, silence for `memberTtlMs` too) and decides who approves each event.
 *
 * @example
 * ```ts
 * const leader = await Leader.open(host, term); // null: another process took that term
 * leader?.document(document); // relayed to every follower with the term
 * ```
 */
export class Leader {
  readonly term: number;
  readonly #host: LeaderHost;
  readonly #server: net.Server;
  readonly #peers = new Map<net.Socket, Peer>();
  readonly #events = new Map<string, EventRecord>();
  #lastDoc: MaintenanceDocument | null = null;
  #timer: TimerHandle | null = null;
  /** Soon after taking over (old sockets of dead leaders), then once a minute. */
  #sweepAt: number;
  #closed = false;
  #graceUntil: number;

  private constructor(host: LeaderHost, term: number, server: net.Server) {
    this.#host = host;
    this.term = term;
    this.#server = server;
    server.on('connection', (socket) => this.#accept(socket));
    this.#graceUntil = host.previous.length > 0 ? host.now() + host.graceMs : 0;
    this.#sweepAt = host.now() + 1000;
    for (const e of host.ownClaimed) this.#done(e);
    for (const e of host.ownPrepared) this.#entry(e).prepared.push(host.id);
    server.on('error', (err) =>
      host.logger.debug({ err: err.message }, 'freezeguard: server error'),
    );
    this.#schedule();
  }

  /** Listens on the socket of `term`; null when another process took that term first. */
  static async open(host: LeaderHost, term: number): Promise<Leader | null> {
    const server = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      // exclusive: in a node:cluster worker a plain listen() is handed to the primary, which
      // gives every worker asking for the same path the same handle: two workers would
      // both "take" one term and split the VM's processes between two leaders.
      server.listen({ path: socketPath(host.dir, term), exclusive: true }, () => resolve(true));
    });
    if (!ok) return null;
    server.unref();
    return new Leader(host, term, server);
  }

  /** Relays a document read by this process (the poller) to every follower. */
  document(document: MaintenanceDocument): void {
    this.#lastDoc = document;
    this.#broadcast({ t: 'doc', term: this.term, document });
  }

  /** Relays a failed read. */
  error(error: { code: string; message: string }, streak: number): void {
    this.#broadcast({ t: 'err', term: this.term, error, streak });
  }

  /** Records that the leader's own process prepared; true when it approves now. */
  preparedSelf(eventId: string): boolean {
    return this.#record(this.#host.id, eventId) === this.#host.id;
  }

  /** The leader's own process took (or lost) the approval of `eventId`. */
  claimedSelf(eventId: string): void {
    this.#done(eventId);
  }

  members(): LocalMember[] {
    return [
      { id: this.#host.id, pid: process.pid, view: this.#host.selfView(), poller: true },
      ...[...this.#peers.values()].map((p) => ({
        id: p.id,
        pid: p.pid,
        view: p.view,
        poller: false,
      })),
    ];
  }

  /** True when `eventId` was recorded as approved on this VM. */
  isDone(eventId: string): boolean {
    return this.#events.get(eventId)?.done === true;
  }

  /** Stops listening (the socket file goes away) and drops every follower. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) this.#host.timers.clearTimeout(this.#timer);
    this.#server.close();
    for (const socket of this.#peers.keys()) socket.destroy();
    this.#peers.clear();
  }

  #accept(socket: net.Socket): void {
    socket.unref();
    socket.on('error', () => {});
    socket.on('close', () => {
      const peer = this.#peers.get(socket);
      this.#peers.delete(socket);
      if (peer && !this.#closed) {
        this.#host.logger.info({ member: peer.id, pid: peer.pid }, 'freezeguard: a process left');
        this.#reevaluate();
        this.#broadcastMembers();
      }
    });
    receive(socket, (m) => this.#message(socket, m));
  }

  #message(socket: net.Socket, m: WireMessage): void {
    if (this.#closed) return;
    const now = this.#host.now();
    const peer = this.#peers.get(socket);
    if (m.t === 'hello' && typeof m.id === 'string') {
      const joined: Peer = {
        id: m.id,
        pid: Number(m.pid) || 0,
        view: asView(m.view),
        lastSeen: now,
      };
      this.#peers.set(socket, joined);
      // The first follower: beat for it from now on, not at the slower pace of a leader alone.
      if (this.#peers.size === 1) this.#schedule();
      for (const e of strings(m.claimed)) this.#done(e);
      send(socket, {
        t: 'welcome',
        term: this.term,
        leader: this.#host.id,
        document: this.#lastDoc,
      });
      // Recorded first, decided after: a process saying hello awaits no answer, so a grant
      // for it must be sent, not returned.
      for (const e of strings(m.prepared)) this.#entry(e).prepared.push(joined.id);
      this.#reevaluate();
      this.#broadcastMembers();
      return;
    }
    if (!peer) return;
    peer.lastSeen = now;
    if (m.t === 'hb') peer.view = asView(m.view);
    else if (m.t === 'ping') send(socket, { t: 'pong', term: this.term });
    else if (m.t === 'prepared' && typeof m.eventId === 'string') {
      const who = this.#record(peer.id, m.eventId);
      send(socket, { t: 'ack', rid: m.rid, eventId: m.eventId, approve: who === peer.id });
    } else if (m.t === 'claimed' && typeof m.eventId === 'string') this.#done(m.eventId);
    else if (m.t === 'name') {
      void this.#host.resourceName().then(
        (name) => send(socket, { t: 'name', rid: m.rid, name: name ?? null }),
        () => send(socket, { t: 'name', rid: m.rid, name: null }),
      );
    }
  }

  /** Records `member` as prepared for `eventId`; returns who approves now, if anyone. */
  #record(member: string, eventId: string): string | null {
    const record = this.#entry(eventId);
    if (!record.prepared.includes(member)) record.prepared.push(member);
    return this.#grant(eventId, record, member);
  }

  #entry(eventId: string): EventRecord {
    let record = this.#events.get(eventId);
    if (!record) {
      record = { prepared: [], grantedTo: null, done: false, at: this.#host.now() };
      this.#events.set(eventId, record);
    }
    return record;
  }

  #grant(eventId: string, record: EventRecord, reporter: string | null): string | null {
    if (this.#inGrace()) return null;
    const who = approver(record, this.#liveIds(), this.#host.id, reporter);
    if (who === null) return null;
    record.grantedTo = who;
    this.#host.logger.info(
      { eventId, approver: who, processes: this.#peers.size + 1 },
      'freezeguard: every process on this VM prepared; one of them approves',
    );
    if (who === reporter) return who;
    if (who === this.#host.id) this.#host.grantSelf(eventId);
    else {
      for (const [socket, p] of this.#peers)
        if (p.id === who) send(socket, { t: 'grant', eventId });
    }
    return who;
  }

  #done(eventId: string): void {
    const record = this.#entry(eventId);
    record.done = true;
    record.grantedTo = null;
  }

  #inGrace(): boolean {
    if (this.#graceUntil === 0) return false;
    const back = new Set([...this.#peers.values()].map((p) => p.id));
    if (this.#host.now() < this.#graceUntil && !this.#host.previous.every((id) => back.has(id))) {
      return true;
    }
    this.#graceUntil = 0;
    return false;
  }

  #reevaluate(): void {
    for (const [eventId, record] of this.#events) this.#grant(eventId, record, null);
  }

  /** The processes an approval waits for: every live one but the observers. */
  #liveIds(): string[] {
    const self = this.#host.selfView().observing === true ? [] : [this.#host.id];
    return [
      ...self,
      ...[...this.#peers.values()].filter((p) => !p.view.observing).map((p) => p.id),
    ];
  }

  #broadcast(message: WireMessage): void {
    for (const socket of this.#peers.keys()) send(socket, message);
  }

  #broadcastMembers(): void {
    this.#broadcast({ t: 'hb', term: this.term, members: this.members() });
  }

  // A leader alone has nobody to beat for: it only checks it was not superseded, once a
  // second (it checks before every relay too), so an idle guard costs next to nothing.
  #schedule(): void {
    if (this.#timer !== null) this.#host.timers.clearTimeout(this.#timer);
    const ms =
      this.#peers.size > 0
        ? this.#host.heartbeatMs
        : Math.max(this.#host.heartbeatMs, ALONE_TICK_MS);
    this.#timer = this.#host.timers.setTimeout(() => this.#tick(), ms);
  }

  #tick(): void {
    this.#timer = null;
    if (this.#closed) return;
    let terms: number[] = [];
    try {
      terms = listTerms(this.#host.dir);
    } catch {
      // the directory went away: keep leading the processes already connected
    }
    if (superseded(this.term, terms)) {
      this.#host.superseded();
      return;
    }
    const now = this.#host.now();
    for (const [socket, peer] of this.#peers) {
      // Silent past its TTL (frozen, or stuck): dropped; it re-registers when it comes back.
      if (now - peer.lastSeen > this.#host.memberTtlMs) socket.destroy();
    }
    this.#reevaluate();
    this.#broadcastMembers();
    if (now >= this.#sweepAt) {
      this.#sweepAt = now + 60_000;
      this.#sweep(now);
    }
    this.#schedule();
  }

  #sweep(now: number): void {
    for (const [id, record] of this.#events)
      if (now - record.at > EVENT_TTL_MS) this.#events.delete(id);
    try {
      sweepClaims(this.#host.dir, Date.now(), EVENT_TTL_MS);
      for (const t of listTerms(this.#host.dir)) if (t < this.term) probeStale(this.#host.dir, t);
    } catch {
      // best effort
    }
  }
}

/**
 * Removes the socket file of an older term when nothing listens on it any more.
 *
 * @example
 * ```ts
 * probeStale(dir, 3);
 * ```
 */
export function probeStale(dir: string, term: number): void {
  const file = socketPath(dir, term);
  const socket = net.connect(file);
  socket.unref();
  socket.on('connect', () => socket.destroy());
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ECONNREFUSED') fs.rm(file, { force: true }, () => {});
  });
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * A member's view from what it sent (or its guard returned), unknown fields defaulted.
 *
 * @example
 * ```ts
 * asView({ state: 'idle', ready: true }); // { state: 'idle', ready: true, resourceName: null }
 * ```
 */
export function asView(value: unknown): MemberView {
  const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  return {
    state: typeof v.state === 'string' ? v.state : 'unknown',
    ready: v.ready === true,
    resourceName: typeof v.resourceName === 'string' ? v.resourceName : null,
    ...(v.observing === true ? { observing: true } : {}),
  };
}
