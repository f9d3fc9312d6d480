import type {
  FleetContext,
  FleetCoordinator,
  FleetStatus,
  MaintenanceEvent,
  MaintenanceSource,
  SlotAnswer,
} from '../src/index.js';

/**
 * How the in-memory fleet answers: a slot `granted` or `denied` (the fleet is at
 * minInRotation), or Redis `unavailable` (down: answers at once) or `slow` (answers
 * `unavailable` after the guard stopped waiting).
 */
export type FleetMode = 'granted' | 'denied' | 'unavailable' | 'slow';

/** The fleet's state when the guard approved an event. */
export interface ApprovalRecord {
  readonly id: string;
  /** The fleet named this member the last to prepare for it. */
  readonly claimed: boolean;
  readonly holdsSlot: boolean;
  /** How the fleet answered the member's last slot question. */
  readonly lastAsk: FleetMode | null;
  /** What the test saw of the member then (`snapshot()`). */
  readonly member: MemberSnapshot;
}

/** The member as the test sees it when it approves. */
export interface MemberSnapshot {
  /** A participant's prepare was still running. */
  readonly preparing: boolean;
  /** Only the traffic participant's was (the late traffic phase after a refused slot). */
  readonly onlyTraffic: boolean;
}

/** Slower than the guard waits (2 s): the guard counts the fleet unavailable. */
const SLOW_MS = 3_000;

/**
 * A fleet coordinator in memory for the model test: one member (this guard) whose
 * fellow VMs are simulated. Drain slots are granted, refused or not answered as the
 * scenario says; `prepared()` names this member the last to prepare once per event, and
 * only when every other VM the event lists has prepared (`peersReady`). It wraps the
 * source to record, for each approval, what the fleet had said.
 */
export class ModelFleet implements FleetCoordinator {
  readonly kind = 'model';
  mode: FleetMode;
  /** The other VMs of a shared event have prepared. */
  peersReady: boolean;
  holdsSlot = false;
  lastAsk: FleetMode | null = null;
  /** Slot questions not answered yet (an answer takes a few microtasks to reach the guard). */
  pending = 0;
  readonly claimed = new Set<string>();
  readonly approvals: ApprovalRecord[] = [];
  #ctx: FleetContext | null = null;

  readonly #snapshot: () => MemberSnapshot;

  constructor(o: {
    readonly mode: FleetMode;
    readonly peersReady: boolean;
    readonly snapshot: () => MemberSnapshot;
  }) {
    this.mode = o.mode;
    this.peersReady = o.peersReady;
    this.#snapshot = o.snapshot;
  }

  /** The fleet changed (a slot freed, a peer prepared…): tells the guard, if `notify`. */
  change(mode: FleetMode, peersReady: boolean, notify: boolean): void {
    this.mode = mode;
    this.peersReady = peersReady;
    if (notify) this.#ctx?.onChange();
  }

  wrapSource(inner: MaintenanceSource): MaintenanceSource {
    return {
      kind: inner.kind,
      supportsApproval: inner.supportsApproval,
      start: (ctx) => inner.start(ctx),
      stop: () => inner.stop(),
      resolveResourceName: () => inner.resolveResourceName(),
      health: () => inner.health(),
      approve: (id) => {
        const { holdsSlot, lastAsk } = this;
        const member = this.#snapshot();
        this.approvals.push({ id, claimed: this.claimed.has(id), holdsSlot, lastAsk, member });
        return inner.approve(id);
      },
    };
  }

  start(context: FleetContext): void {
    this.#ctx = context;
  }

  async stop(): Promise<void> {
    this.#ctx = null;
  }

  acquireSlot(): Promise<SlotAnswer> {
    this.pending++;
    const answer = this.#answer();
    void answer.then(() => this.pending--);
    return answer;
  }

  #answer(): Promise<SlotAnswer> {
    const mode = this.mode;
    this.lastAsk = mode;
    if (mode === 'slow') {
      const timers = this.#ctx?.timers;
      return new Promise((resolve) => timers?.setTimeout(() => resolve('unavailable'), SLOW_MS));
    }
    if (mode === 'unavailable') return Promise.resolve('unavailable');
    // A member that still holds its slot (given back after the drain delay) keeps it.
    if (mode === 'granted' || this.holdsSlot) {
      this.holdsSlot = true;
      return Promise.resolve('granted');
    }
    return Promise.resolve('denied');
  }

  async releaseSlot(): Promise<void> {
    this.holdsSlot = false;
  }

  async prepared(event: MaintenanceEvent): Promise<boolean> {
    if (this.mode === 'unavailable' || this.mode === 'slow') return false;
    const shared = event.resources.length > 1;
    if ((shared && !this.peersReady) || this.claimed.has(event.id)) return false;
    this.claimed.add(event.id);
    return true;
  }

  status(): FleetStatus {
    return {
      kind: this.kind,
      group: 'model',
      connected: this.mode !== 'unavailable' && this.mode !== 'slow',
      memberId: 'm1',
      holdsSlot: this.holdsSlot,
      poller: true,
      members: [],
    };
  }
}
