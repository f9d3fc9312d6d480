import { randomBytes } from 'node:crypto';
import { assertOption, errorSummary, withDefaults } from '../errors.js';
import type { FleetContext, FleetCoordinator, FleetStatus } from '../fleet.js';
import { type Logger, silentLogger, withFacts } from '../logger.js';
import type { MaintenanceSource, SourceContext } from '../sources/source.js';
import { type Clock, sleep, systemClock, systemTimers, type Timers } from '../time/clock.js';
import { ANSWER_MS, MemberApprovals } from './approval.js';
import { acceptTerm, electionStep } from './decide.js';
import { Follower, membersOf } from './follower.js';
import { asView, Leader, type LocalMember, type MemberView } from './leader.js';
import { listTerms, readEpoch, writeEpoch } from './paths.js';
import { createLocalSource, type LocalSource, type LocalSourceHost } from './source.js';
import { locateVm } from './vm-id.js';
import type { WireMessage } from './wire.js';

/** Options of {@link localCoordinator}; none is needed on a VM. */
export interface LocalCoordinatorOptions {
  /** The per-user runtime directory. Default: `FREEZEGUARD_LOCAL_DIR`, else `/run/user/<uid>`, `/run` or the temporary directory. */
  readonly directory?: string;
  /** This VM's unique id. Default: the source's `resolveVmId()`, asked by one process and cached for this boot. */
  readonly resolveVmId?: (source: MaintenanceSource) => Promise<string | undefined>;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly timers?: Timers;
  /** Heartbeats between the processes, ms. Default 250. */
  readonly heartbeatMs?: number;
  /** Silence after which a follower pings the leader, ms. Default 1200. */
  readonly suspectMs?: number;
  /** How long the leader has to answer a ping or a new follower, ms. Default 400. */
  readonly probeMs?: number;
  /** A process silent this long is dropped (one that exits is dropped at once), ms. Default 15 000. */
  readonly memberTtlMs?: number;
  /** This process's id among the VM's processes. Default: pid and a random suffix. */
  readonly memberId?: string;
}

const DEFAULTS = { heartbeatMs: 250, suspectMs: 1200, probeMs: 400, memberTtlMs: 15_000 };
/** How long a leader newer than any lost one has to welcome a process. */
const WELCOME_MS = 1500;

/** `starting` (no VM id or election yet), `leader` (polls and relays), `follower`, `solo` (no channel). */
export type LocalRole = 'starting' | 'leader' | 'follower' | 'solo';

/**
 * Coordinates the processes of one VM (node:cluster workers, PM2 instances, an API and a
 * worker started apart) over a Unix socket in a private runtime directory named after the
 * VM id, with no option and no service: one process polls the metadata service and relays
 * every document, fenced by its term; one StartRequests per event, sent by one process
 * once every live process on the VM has prepared. Where no channel can be made, every
 * process acts alone, after one warning. Pass it as `createGuard({ fleet })`.
 *
 * @example
 * ```ts
 * import { createGuard, localCoordinator } from '@freezeguard/core';
 * const guard = createGuard({ fleet: localCoordinator(), approve: 'fleet' });
 * await guard.start();
 * ```
 */
export function localCoordinator(
  options: LocalCoordinatorOptions = {},
): FleetCoordinator & { readonly memberId: string; readonly role: LocalRole } {
  const o = withDefaults(DEFAULTS, options);
  for (const key of ['heartbeatMs', 'suspectMs', 'probeMs', 'memberTtlMs'] as const) {
    assertOption(
      Number.isFinite(o[key]) && o[key] > 0,
      key,
      'must be a positive number of ms',
      o[key],
    );
  }
  assertOption(
    o.suspectMs > o.heartbeatMs,
    'suspectMs',
    'must be greater than heartbeatMs',
    o.suspectMs,
  );
  const id = options.memberId ?? `${process.pid}-${randomBytes(3).toString('hex')}`;
  let inner: MaintenanceSource | null = null;
  let local: LocalSource | null = null;
  let sourceCtx: SourceContext | null = null;
  let fleetCtx: FleetContext | null = null;
  let logger: Logger = localLogger(options.logger ?? silentLogger);
  let clock: Clock = options.clock ?? systemClock;
  let timers: Timers = options.timers ?? systemTimers;
  let role: LocalRole = 'starting';
  let booted = false;
  let dir: string | null = null;
  let vmId: string | undefined;
  let soloReason: string | null = null;
  let seen = 0;
  let lostTerm = 0;
  let leader: Leader | null = null;
  let follower: Follower | null = null;
  let members: LocalMember[] = [];
  let innerRunning = false;
  let electing = false;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const approvals = new MemberApprovals({
    now: () => clock.monotonic(),
    logger: () => logger,
    dir: () => dir,
    leader: () => leader,
    follower: () => follower,
    notify,
  });
  const running = () => sourceCtx !== null || fleetCtx !== null;

  function selfView(): MemberView {
    try {
      return asView(fleetCtx?.member());
    } catch {
      return asView(null); // a throwing view never breaks the channel
    }
  }

  function notify(): void {
    try {
      fleetCtx?.onChange();
    } catch (err) {
      logger.warn({ err: errorSummary(err) }, 'freezeguard: onChange listener threw');
    }
  }

  function setRole(next: LocalRole, facts: object = {}): void {
    const previous = role;
    role = next;
    if (next !== 'starting') markReady();
    if (previous === next) return;
    if (next === 'leader')
      logger.info(
        { vmId, ...facts },
        'freezeguard: this process polls the metadata service for its VM',
      );
    else if (next === 'follower')
      logger.info(
        { vmId, ...facts },
        'freezeguard: reading the documents another process on this VM polls',
      );
  }

  function solo(reason: string): void {
    soloReason = reason;
    logger.warn(
      { reason },
      'freezeguard: no channel to the other processes of this VM; this process polls and approves on its own',
    );
    setRole('solo');
    startInner();
  }

  // --- the inner source: run by the leader (relaying) or a solo process ---

  function startInner(): void {
    if (innerRunning || !inner || !sourceCtx) return;
    innerRunning = true;
    const outer = sourceCtx;
    try {
      inner.start({
        logger: outer.logger,
        clock: outer.clock,
        timers: outer.timers,
        onDocument(document) {
          if (role === 'solo') return outer.onDocument(document);
          if (role !== 'leader' || !leader || !stillLeading()) return;
          outer.onDocument(document);
          leader.document(document);
        },
        onError(error, streak) {
          if (role !== 'solo' && (role !== 'leader' || !leader)) return;
          outer.onError(error, streak);
          leader?.error({ code: error.code, message: error.message }, streak);
        },
        onTimeReference(sample) {
          if (role === 'leader' || role === 'solo') outer.onTimeReference?.(sample);
        },
      });
    } catch (err) {
      logger.error({ err: errorSummary(err) }, 'freezeguard: source failed to start');
    }
  }

  async function stopInner(): Promise<void> {
    if (!innerRunning || !inner) return;
    innerRunning = false;
    await inner.stop().catch(() => {});
  }

  // A leader checks before every relay that nobody took a higher term while it was frozen.
  function stillLeading(): boolean {
    if (!leader || !dir) return false;
    try {
      if (listTerms(dir).some((t) => t > leader!.term)) {
        void stepDown();
        return false;
      }
    } catch {
      // directory gone: keep serving the processes already connected
    }
    return true;
  }

  async function stepDown(): Promise<void> {
    if (!leader) return;
    lostTerm = Math.max(lostTerm, leader.term);
    logger.warn(
      { term: leader.term },
      'freezeguard: another process took over polling while this one was stopped; following it',
    );
    leader.close();
    leader = null;
    role = 'starting';
    await stopInner();
    void elect();
  }

  // --- election ---

  async function elect(): Promise<void> {
    if (electing || !dir || !running()) return;
    electing = true;
    try {
      for (let attempt = 0; running() && role !== 'solo'; attempt++) {
        const { follow, claim } = electionStep({
          terms: listTerms(dir),
          epoch: readEpoch(dir),
          seen,
          lost: lostTerm,
        });
        if (follow !== null) {
          // A leader newer than the one lost is presumed alive, only slow to answer (a busy
          // start-up): it gets a generous welcome.
          const f = await Follower.connect(followerHost(dir), follow, WELCOME_MS);
          // A leader that closed right after its welcome: look again.
          if (f && running() && !f.closed) {
            follower = f;
            seen = Math.max(seen, follow);
            setRole('follower', { term: follow });
            await stopInner();
            return;
          }
          f?.close();
        }
        const l = await Leader.open(leaderHost(dir), claim);
        if (l && running()) {
          leader = l;
          seen = claim;
          writeEpochSafe(dir, claim);
          setRole('leader', { term: claim });
          startInner();
          return;
        }
        l?.close();
        if (attempt > 20) return solo('no election succeeded after 20 attempts');
        await sleep(timers, 20 + Math.random() * 60);
      }
    } catch (err) {
      solo(`election failed: ${(err as Error).message}`);
    } finally {
      electing = false;
    }
  }

  function writeEpochSafe(d: string, term: number): void {
    try {
      writeEpoch(d, term);
    } catch {
      // the socket names still carry the term
    }
  }

  function leaderHost(d: string) {
    return {
      // Everyone the last leader listed but itself: a takeover waits for them to return.
      previous: members.filter((m) => !m.poller && m.id !== id).map((m) => m.id),
      graceMs: o.suspectMs + o.probeMs + 2 * o.heartbeatMs,
      ownPrepared: approvals.prepared,
      ownClaimed: approvals.claimed,
      id,
      dir: d,
      logger,
      timers,
      heartbeatMs: o.heartbeatMs,
      memberTtlMs: o.memberTtlMs,
      now: () => clock.monotonic(),
      selfView,
      grantSelf: (eventId: string) => approvals.grant(eventId),
      superseded: () => void stepDown(),
      resourceName: async () => local?.resourceName(),
    };
  }

  function followerHost(d: string) {
    return {
      id,
      dir: d,
      clock,
      timers,
      heartbeatMs: o.heartbeatMs,
      suspectMs: o.suspectMs,
      probeMs: o.probeMs,
      selfView,
      prepared: () => approvals.prepared,
      claimed: () => approvals.claimed,
      message: onMessage,
      lost(why: string) {
        if (role !== 'follower') return;
        logger.info({ why }, 'freezeguard: the polling process is gone; electing another');
        lostTerm = Math.max(lostTerm, follower?.term ?? 0);
        follower = null;
        role = 'starting';
        void elect();
      },
    };
  }

  function onMessage(m: WireMessage): void {
    const term = Number(m.term);
    if (m.t === 'doc' || m.t === 'err' || m.t === 'welcome') {
      // Fencing: nothing from a leader older than the newest one seen.
      if (!acceptTerm(term, seen)) return;
      seen = term;
    }
    if (m.t === 'hb') members = membersOf(m) ?? members;
    else if (m.t === 'grant' || (m.t === 'ack' && m.approve === true)) {
      approvals.grant(String(m.eventId));
    } else local?.deliver(m);
  }

  // --- start-up: directory, VM id, first election ---

  async function boot(): Promise<void> {
    if (booted) return;
    booted = true;
    if (!inner) return solo('wrapSource() was not called: no source to read the VM id from');
    const place = await locateVm(inner, options, { clock, timers, logger, running });
    if (!running()) return;
    if ('solo' in place) return solo(place.solo);
    vmId = place.vmId;
    dir = place.dir;
    await elect();
  }

  function adopt(ctx: { logger: Logger; clock: Clock; timers: Timers }): void {
    logger = localLogger(options.logger ?? ctx.logger);
    clock = options.clock ?? ctx.clock;
    timers = options.timers ?? ctx.timers;
  }

  async function shutdown(): Promise<void> {
    if (running()) return;
    leader?.close();
    leader = null;
    follower?.close();
    follower = null;
    await stopInner();
    booted = false;
    role = 'starting';
  }

  function host(): LocalSourceHost {
    return {
      following: () => role === 'follower',
      ready,
      attach(context) {
        sourceCtx = context;
        adopt(context);
        if (role === 'leader' || role === 'solo') startInner();
        void boot();
      },
      async detach() {
        sourceCtx = null;
        await stopInner();
        await shutdown();
      },
      async askLeaderForName() {
        if (role !== 'follower' || !follower) return null;
        const answer = await follower.request({ t: 'name' }, 5000);
        return typeof answer?.name === 'string' && answer.name !== '' ? answer.name : null;
      },
      clock: () => clock,
      logger: () => logger,
    };
  }

  return {
    kind: 'local',
    scope: 'vm',
    memberId: id,
    get role() {
      return role;
    },
    wrapSource(source) {
      inner = source;
      local = createLocalSource(source, host());
      return local.source;
    },
    start(context) {
      if (fleetCtx) return;
      fleetCtx = context;
      adopt(context);
      void boot();
    },
    async stop() {
      fleetCtx = null;
      await shutdown();
    },
    // The whole VM freezes together: a process never keeps capacity from another one here.
    async acquireSlot() {
      return 'granted';
    },
    async releaseSlot() {},
    async prepared(event) {
      // Approving releases the event for every VM it lists, and this coordinator knows only
      // the processes of this VM: an event that lists others is left to NotBefore (or to
      // the Redis fleet, which knows them).
      if (event.resources.length !== 1) return false;
      const eventId = event.id;
      if (role === 'starting') await Promise.race([ready, sleep(timers, ANSWER_MS)]);
      if (role === 'solo') return true;
      return approvals.report(eventId);
    },
    status(): FleetStatus {
      const list = leader ? leader.members() : role === 'follower' ? members : [];
      return {
        kind: 'local',
        group: vmId ?? '',
        connected: role === 'leader' || role === 'follower',
        memberId: id,
        holdsSlot: false,
        poller: role === 'leader' || role === 'solo',
        lastError: soloReason,
        members: list.map((m) => ({
          id: m.id,
          resourceName: m.view?.resourceName ?? null,
          state: m.view?.state ?? 'unknown',
          ready: m.view?.ready === true,
          holdsSlot: false,
          poller: m.poller === true,
        })),
      };
    },
  };
}

/** The coordinator's records say where they come from; the message keeps the one prefix. */
function localLogger(logger: Logger): Logger {
  return withFacts(logger, { component: 'local' });
}
