import type {
  FleetContext,
  FleetCoordinator,
  FleetMemberView,
  FleetStatus,
  Logger,
  MaintenanceEvent,
  MaintenanceSource,
  SlotAnswer,
  TimerHandle,
  Timers,
} from '@freezeguard/core';
import { errorSummary } from '@freezeguard/core/adapter';
import { fleetLogger } from './log.js';
import { approvalKeys, groupKeys, type RedisFleetOptions, resolveOptions } from './options.js';
import type { FleetRuntime } from './runtime.js';
import { ACQUIRE, HEARTBEAT, LEAVE, PREPARED, REGISTER, RELEASE, UNAPPROVE } from './scripts.js';
import { parseGroup } from './snapshot.js';
import { createSharedSource, type SharedSource } from './source.js';
import { FleetStore } from './store.js';

/** How long prepared/approved marks of an event live: longer than any notice (15 min). */
const EVENT_KEY_TTL_MS = 60 * 60_000;

type SlotMode = 'hold' | 'none' | 'keep';

/**
 * A {@link FleetCoordinator} backed by Redis (ioredis ≥ 5): membership with a heartbeat,
 * drain slots granted atomically only while `minInRotation` other members keep serving,
 * fleet-wide approval of multi-VM events, and one metadata poller per VM. Every method
 * resolves within `opTimeoutMs`; with Redis unreachable the guard acts solo (documented
 * in the package README).
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { createGuard } from '@freezeguard/core';
 * import { redisFleet } from '@freezeguard/fleet';
 *
 * const guard = createGuard({
 *   fleet: redisFleet({ redis: new Redis(process.env.REDIS_URL), group: 'checkout-api', minInRotation: 1 }),
 *   approve: 'fleet',
 * });
 * ```
 */
export function redisFleet(
  options: RedisFleetOptions,
): FleetCoordinator & { readonly memberId: string } {
  const o = resolveOptions(options);
  const keys = groupKeys(o.keyPrefix, o.group);
  const groupKeyList = [keys.members, keys.info, keys.slots];
  // Approval is per VM, across groups (an API and a worker on one VM are in two groups):
  // every member is also in the registry of its key prefix, under its group-qualified id.
  const registry = approvalKeys(o.keyPrefix);
  const registryId = `${o.group}/${o.memberId}`;
  const registryKeyList = [registry.members, registry.info];

  let store: FleetStore | null = null;
  let users = 0;
  let source: SharedSource | null = null;
  let ctx: FleetContext | null = null;
  let timers: Timers | null = null;
  let logger: Logger | null = null;
  let beatTimer: TimerHandle | null = null;
  let beating = false;
  let running = false;
  let unsubscribe: (() => void) | null = null;

  let holding = false;
  let slotEvents: readonly string[] = [];
  let slotInflight = 0;
  let lastAnswer: SlotAnswer | null = null;
  let group: FleetStatus['members'] = [];
  let servingOthers: number | null = null;
  /** The last reason the registry gave per event, so a repeated answer is not logged twice. */
  const lastReason = new Map<string, string>();

  const runtime: FleetRuntime = {
    o,
    open(log, t) {
      users++;
      if (!store) {
        store = new FleetStore(o.redis, {
          logger: log,
          timers: t,
          opTimeoutMs: o.opTimeoutMs,
          name: `freezeguard:${o.memberId}`,
          onUp: () => {
            // Redis came back (possibly empty after a restart): register at once and let
            // the guard ask again for whatever it was waiting for.
            scheduleBeat(0);
            source?.poke();
            notify();
          },
        });
      }
      return store;
    },
    async release() {
      users--;
      if (users <= 0 && store) {
        const s = store;
        store = null;
        users = 0;
        await s.close();
      }
    },
    guardResourceName() {
      return view()?.resourceName ?? undefined;
    },
    isPoller() {
      return source?.role === 'poller';
    },
  };

  function view(): FleetMemberView | null {
    if (!ctx) return null;
    try {
      return ctx.member();
    } catch (err) {
      logger?.warn({ err: errorSummary(err) }, 'freezeguard: member() threw');
      return null;
    }
  }

  function resourceName(): string | undefined {
    return view()?.resourceName ?? source?.resolvedName ?? undefined;
  }

  function viewJson(): string {
    const v = view();
    return JSON.stringify({
      group: o.group,
      resourceName: v?.resourceName ?? source?.resolvedName ?? null,
      state: v?.state ?? 'unknown',
      ready: v?.ready ?? false,
      ...(v?.observing === true ? { observing: true } : {}),
      poller: runtime.isPoller(),
      events: holding ? slotEvents : [],
    });
  }

  function notify(): void {
    if (!ctx || !running) return;
    try {
      ctx.onChange();
    } catch (err) {
      logger?.warn({ err: errorSummary(err) }, 'freezeguard: onChange listener threw');
    }
  }

  function loseSlot(reason: string): void {
    if (!holding) return;
    holding = false;
    slotEvents = [];
    logger?.warn({ reason }, 'freezeguard: drain slot lost; the guard decides again');
    notify();
  }

  function scheduleBeat(ms: number): void {
    if (!running || !timers) return;
    if (beatTimer !== null) timers.clearTimeout(beatTimer);
    beatTimer = timers.setTimeout(() => {
      beatTimer = null;
      void beat();
    }, ms);
  }

  async function beat(): Promise<void> {
    if (!running || !store) return;
    if (beating) return scheduleBeat(o.heartbeatMs);
    beating = true;
    const mode: SlotMode = slotInflight > 0 ? 'keep' : holding ? 'hold' : 'none';
    const self = viewJson();
    const result = await store.run<[number, number, string[]]>(HEARTBEAT, groupKeyList, [
      o.memberId,
      o.memberTtlMs,
      self,
      mode,
      o.slotTtlMs,
      keys.channel,
    ]);
    // The registry beat goes on its own: its keys sit in another hash slot.
    if (result.ok && running) {
      await store?.run(REGISTER, registryKeyList, [
        registryId,
        o.memberTtlMs,
        self,
        registry.channel,
      ]);
    }
    beating = false;
    if (!running) return;
    if (result.ok) {
      const [slotOk, now, flat] = result.value;
      group = parseGroup(flat, now);
      if (mode === 'hold' && slotOk !== 1 && holding && slotInflight === 0) {
        loseSlot('the lease is gone from Redis');
      }
    } else if (holding && slotInflight === 0) {
      // A member never keeps a slot it cannot renew.
      loseSlot(`renewal failed: ${result.error.message}`);
    }
    scheduleBeat(o.heartbeatMs);
  }

  const coordinator: FleetCoordinator & { readonly memberId: string } = {
    kind: 'redis',
    scope: 'fleet',
    memberId: o.memberId,

    wrapSource(inner: MaintenanceSource): MaintenanceSource {
      source = createSharedSource(inner, runtime);
      return source.source;
    },

    start(context) {
      if (running) return;
      ctx = context;
      timers = context.timers;
      logger = fleetLogger(context.logger);
      running = true;
      const s = runtime.open(context.logger, context.timers);
      const offs = [
        s.subscribe(keys.channel, (message) => {
          // Our own joins and beats are no news to our guard.
          if (!message.endsWith(` ${o.memberId}`)) notify();
        }),
        // A member of another group on a listed VM that left may have been the last one an
        // approval waited for: the guard reports again.
        s.subscribe(registry.channel, (message) => {
          if (message.startsWith('left ') && !message.endsWith(` ${registryId}`)) notify();
        }),
      ];
      unsubscribe = () => {
        for (const off of offs) off();
      };
      scheduleBeat(0);
    },

    async stop() {
      if (!running) return;
      running = false;
      if (beatTimer !== null) timers?.clearTimeout(beatTimer);
      beatTimer = null;
      unsubscribe?.();
      unsubscribe = null;
      holding = false;
      if (store) {
        await Promise.all([
          store.run(LEAVE, groupKeyList, [o.memberId, keys.channel]),
          store.run(LEAVE, registryKeyList, [registryId, registry.channel]),
        ]);
      }
      await runtime.release();
      ctx = null;
    },

    async acquireSlot(eventIds) {
      if (!running || !store) return 'unavailable';
      slotInflight++;
      const wasHolding = holding;
      const result = await store.run<[number, number]>(ACQUIRE, groupKeyList, [
        o.memberId,
        o.memberTtlMs,
        viewJson(),
        o.slotTtlMs,
        o.minInRotation,
        keys.channel,
      ]);
      slotInflight--;
      let answer: SlotAnswer;
      if (!result.ok) {
        // The script may still run late on a slow Redis: take back what it might grant,
        // on the same connection, so it runs right after it.
        if (!wasHolding) store.fireAndForget(RELEASE, [keys.slots], [o.memberId, keys.channel]);
        holding = false;
        answer = 'unavailable';
      } else {
        const [granted, others] = result.value;
        servingOthers = others;
        answer = granted === 1 ? 'granted' : 'denied';
        if (answer === 'granted') {
          holding = true;
          slotEvents = [...eventIds];
        }
      }
      if (answer !== lastAnswer || answer === 'granted') {
        const facts = {
          eventIds,
          servingOthers,
          minInRotation: o.minInRotation,
          ...(result.ok ? {} : { err: errorSummary(result.error) }),
        };
        if (answer === 'granted') logger?.info(facts, 'freezeguard: drain slot granted');
        else if (answer === 'denied')
          logger?.info(
            facts,
            'freezeguard: drain slot denied: draining now would leave fewer than minInRotation serving',
          );
        else logger?.warn(facts, 'freezeguard: drain slot unavailable (Redis); acting solo');
      }
      lastAnswer = answer;
      return answer;
    },

    async releaseSlot() {
      const had = holding;
      holding = false;
      slotEvents = [];
      if (!store) return;
      slotInflight++;
      const result = await store.run(RELEASE, [keys.slots], [o.memberId, keys.channel]);
      slotInflight--;
      if (had) {
        logger?.info(
          { released: result.ok },
          result.ok
            ? 'freezeguard: drain slot released'
            : 'freezeguard: drain slot release failed; the next heartbeat retries it',
        );
      }
    },

    async prepared(event: MaintenanceEvent) {
      const name = resourceName();
      if (!running || !store || name === undefined) return false;
      const approvedKey = registry.approved(event.id);
      const result = await store.run<[number, string]>(
        PREPARED,
        [...registryKeyList, registry.prepared(event.id), approvedKey],
        [
          registryId,
          o.memberTtlMs,
          viewJson(),
          name,
          JSON.stringify(event.resources),
          EVENT_KEY_TTL_MS,
          registry.channel,
        ],
      );
      if (!result.ok) {
        // If the script ran late and picked us, nobody would approve: undo it.
        store.fireAndForget(UNAPPROVE, [approvedKey], [registryId]);
        return false;
      }
      const [approve, reason] = result.value;
      const facts = {
        eventId: event.id,
        resources: event.resources,
        approve: approve === 1,
        reason,
      };
      if (approve === 1)
        logger?.info(facts, 'freezeguard: last member to prepare; this one approves the event');
      // The guard asks again at every change of the fleet: the same answer is no news.
      else if (lastReason.get(event.id) !== reason)
        logger?.info(facts, 'freezeguard: prepared; not approving');
      else logger?.debug(facts, 'freezeguard: prepared; not approving');
      lastReason.set(event.id, reason);
      if (lastReason.size > 100) lastReason.delete(lastReason.keys().next().value as string);
      return approve === 1;
    },

    status(): FleetStatus {
      return {
        kind: 'redis',
        group: o.group,
        connected: store?.connected ?? false,
        memberId: o.memberId,
        holdsSlot: holding,
        poller: runtime.isPoller(),
        minInRotation: o.minInRotation,
        inRotation: group.filter((m) => m.ready && !m.holdsSlot).length,
        lastError: store?.lastError ?? null,
        members: group,
      };
    },
  };
  return coordinator;
}
