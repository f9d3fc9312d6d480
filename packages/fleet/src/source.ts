import { randomUUID } from 'node:crypto';
import {
  FreezeguardError,
  type FreezeguardErrorCode,
  type Logger,
  type MaintenanceDocument,
  type MaintenanceSource,
  type SourceContext,
  type SourceHealth,
  type TimerHandle,
} from '@freezeguard/core';
import { errorSummary, parseMaintenanceDocument, vmIdentity } from '@freezeguard/core/adapter';
import { fleetLogger } from './log.js';
import { vmKeys } from './options.js';
import type { FleetRuntime } from './runtime.js';
import { CLAIM, PUBLISH_DOC, RESIGN } from './scripts.js';
import type { FleetStore } from './store.js';

/**
 * - `starting`: the VM name is not known yet, or the first election has not answered;
 * - `poller`: this member holds the VM's lease, runs the inner source and publishes;
 * - `follower`: another member polls; this one reads what it publishes;
 * - `solo`: Redis cannot be reached; this member polls on its own, as without a fleet.
 */
export type PollerRole = 'starting' | 'poller' | 'follower' | 'solo';

/** The wrapped source and what the coordinator reads from it. */
export interface SharedSource {
  readonly source: MaintenanceSource;
  readonly role: PollerRole;
  /** The VM name this process resolved through the inner source, if it had to. */
  readonly resolvedName: string | undefined;
  /** Decide again now (Redis came back). */
  poke(): void;
}

interface Message {
  readonly t: 'doc' | 'err';
  readonly by: string;
  /** The poller's term (fencing token): a document of an older term is never taken. */
  readonly epoch: number;
  /** Counts the documents of one term. */
  readonly n: number;
  readonly document?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
  readonly streak?: number;
}

/**
 * Members on one VM elect one poller through a Redis lease; the poller runs `inner` and
 * publishes each document and error (pub/sub, plus a key holding the latest for members
 * that join or missed a message). The lease is renewed every `pollerRenewMs` and lapses
 * after `pollerLeaseMs`, so a frozen or dead poller is replaced within a few seconds.
 * Without Redis every member polls `inner` itself.
 */
export function createSharedSource(inner: MaintenanceSource, runtime: FleetRuntime): SharedSource {
  const o = runtime.o;
  let ctx: SourceContext | null = null;
  let outerLogger: Logger | null = null;
  let store: FleetStore | null = null;
  let running = false;
  let role: PollerRole = 'starting';
  let innerRunning = false;
  let tickTimer: TimerHandle | null = null;
  let ticking = false;
  let resolvedName: string | undefined;
  let nameInflight: Promise<string | undefined> | null = null;
  let nameFailures = 0;
  let nameRetryAt = 0;
  let docsKey: string | null = null;
  // The VM's unique id keys the poller: two VMs may share a name (Azure names are unique
  // per resource group, GCE names per zone) and must not read each other's documents.
  let vmId: string | undefined;
  // Until the source answered (or when it cannot tell), elections wait / go by name.
  let vmIdSettled = !inner.resolveVmId;
  let vmIdLookup: Promise<void> | null = null;
  let unsubscribeDocs: (() => void) | null = null;
  let published = 0;
  // The lease names this start of the process: one restarted with the same memberId takes
  // a new term at once, and its documents carry that term's epoch.
  const holder = `${o.memberId} ${randomUUID()}`;
  let epoch = 0;
  // The newest term heard, and how far into it: fencing by term, not by a per-process count.
  let seen = { epoch: 0, n: 0 };
  const followed = {
    lastSuccessAt: null as number | null,
    lastErrorAt: null as number | null,
    lastError: null as { code: string; message: string } | null,
    consecutiveFailures: 0,
  };

  function currentName(): string | undefined {
    return runtime.guardResourceName() ?? resolvedName;
  }

  /** What the poller lease and the documents are keyed by: the VM id, else its name. */
  function pollKey(): string | undefined {
    if (!vmIdSettled) return undefined;
    return vmId !== undefined ? `id:${vmId}` : currentName();
  }

  function requestVmId(context: SourceContext): void {
    if (vmIdSettled || vmIdLookup) return;
    vmIdLookup = vmIdentity(inner, {
      clock: context.clock,
      timers: context.timers,
      logger: context.logger,
      running: () => running,
    }).then((id) => {
      vmId = id;
      vmIdSettled = true;
      if (!id)
        context.logger.info(
          {},
          'freezeguard: this VM id is unknown; the poller election goes by VM name',
        );
      poke();
    });
  }

  function resolveOnce(): Promise<string | undefined> {
    if (!nameInflight) {
      nameInflight = inner.resolveResourceName().then(
        (name) => {
          nameInflight = null;
          if (name) resolvedName = name;
          return name;
        },
        (err: unknown) => {
          nameInflight = null;
          throw err;
        },
      );
    }
    return nameInflight;
  }

  // The election needs the VM name; ask the inner source once, retrying with backoff.
  function requestName(): void {
    if (nameInflight || !ctx || ctx.clock.monotonic() < nameRetryAt) return;
    resolveOnce().then(
      () => poke(),
      (err: unknown) => {
        nameFailures++;
        nameRetryAt = (ctx?.clock.monotonic() ?? 0) + Math.min(30_000, 1000 * 2 ** nameFailures);
        if (nameFailures === 1) {
          ctx?.logger.warn(
            { err: errorSummary(err) },
            'freezeguard: cannot read this VM name; the poller election waits for it',
          );
        }
      },
    );
  }

  const innerContext = (): SourceContext => {
    const outer = ctx!;
    return {
      // The inner source's messages are core's, not the fleet's.
      logger: outerLogger ?? outer.logger,
      clock: outer.clock,
      timers: outer.timers,
      onDocument(document) {
        if (!running || role === 'follower') return;
        outer.onDocument(document);
        if (role === 'poller') void publish({ t: 'doc', document });
      },
      onError(error, streak) {
        if (!running || role === 'follower') return;
        outer.onError(error, streak);
        if (role === 'poller') void publish({ t: 'err', error: error.toJSON(), streak });
      },
      // Time references describe this process's clocks: they are not shared.
      onTimeReference(sample) {
        if (running && role !== 'follower') outer.onTimeReference?.(sample);
      },
    };
  };

  async function publish(body: Omit<Message, 'by' | 'n' | 'epoch'>): Promise<void> {
    const key = pollKey();
    if (!store || key === undefined) return;
    const k = vmKeys(o.keyPrefix, key);
    const payload = JSON.stringify({ ...body, by: o.memberId, epoch, n: ++published });
    const result = await store.run<number>(
      PUBLISH_DOC,
      [k.poller, k.latest, k.epoch],
      [holder, payload, Math.max(10_000, 3 * o.pollerLeaseMs), k.channel, epoch],
    );
    // Fenced out: the lease lapsed (this process was frozen); step down at once.
    if (result.ok && result.value === 0 && role === 'poller') poke();
  }

  function receive(raw: string): void {
    if (!running || role !== 'follower' || !ctx) return;
    let message: Message;
    try {
      message = JSON.parse(raw) as Message;
    } catch {
      return;
    }
    if (typeof message.n !== 'number' || typeof message.epoch !== 'number') return;
    if (!fresh(seen, message)) return;
    seen = { epoch: message.epoch, n: message.n };
    const now = ctx.clock.now();
    if (message.t === 'doc') {
      let document: MaintenanceDocument;
      try {
        document = parseMaintenanceDocument(message.document);
      } catch (err) {
        ctx.logger.debug({ err: errorSummary(err) }, 'freezeguard: bad shared document');
        return;
      }
      followed.lastSuccessAt = now;
      followed.consecutiveFailures = 0;
      ctx.onDocument(document);
    } else if (message.t === 'err' && message.error) {
      const error = new FreezeguardError(
        message.error.code as FreezeguardErrorCode,
        `${message.error.message} (read by ${message.by})`,
      );
      followed.lastErrorAt = now;
      followed.lastError = { code: error.code, message: error.message };
      followed.consecutiveFailures = message.streak ?? followed.consecutiveFailures + 1;
      ctx.onError(error, followed.consecutiveFailures);
    }
  }

  function follow(key: string): void {
    if (docsKey === key || !store) return;
    unsubscribeDocs?.();
    docsKey = key;
    seen = { epoch: 0, n: 0 }; // another VM key, other terms
    unsubscribeDocs = store.subscribe(vmKeys(o.keyPrefix, key).channel, receive);
  }

  async function become(next: PollerRole, name: string, holder?: string): Promise<void> {
    if (!ctx) return;
    const previous = role;
    role = next;
    if (next === 'follower' && innerRunning) {
      innerRunning = false;
      await inner.stop().catch(() => {});
    } else if (next !== 'follower' && !innerRunning) {
      innerRunning = true;
      try {
        inner.start(innerContext());
      } catch (err) {
        ctx.logger.error({ err: errorSummary(err) }, 'freezeguard: source failed to start');
      }
    }
    if (previous === next) return;
    if (next === 'poller') {
      ctx.logger.info(
        { resourceName: name, memberId: o.memberId },
        'freezeguard: this member polls the metadata service for its VM',
      );
    } else if (next === 'follower') {
      ctx.logger.info(
        { resourceName: name, poller: holder },
        'freezeguard: reading the metadata documents another member on this VM polls',
      );
    } else if (next === 'solo') {
      ctx.logger.warn(
        { resourceName: name },
        'freezeguard: Redis unavailable; polling the metadata service directly',
      );
    }
  }

  async function decide(): Promise<void> {
    const name = currentName();
    if (name === undefined || !store) {
      requestName();
      return;
    }
    const key = pollKey();
    if (key === undefined) return; // the VM id is being read: one poke when it is known
    follow(key);
    const k = vmKeys(o.keyPrefix, key);
    const claim = await store.run<[number, string, number, string?]>(
      CLAIM,
      [k.poller, k.epoch],
      [holder, o.pollerLeaseMs, o.memberId],
    );
    if (!running) return;
    if (!claim.ok) return become('solo', name);
    if (claim.value[0] === 1) {
      epoch = Number(claim.value[2]);
      noteTakeover(claim.value[3]);
      return become('poller', name);
    }
    await become('follower', name, String(claim.value[1]).split(' ')[0]);
    // Catch up on what pub/sub did not deliver (joined late, subscriber reconnecting),
    // once the subscription is active: a document published before it is in `latest`,
    // one published after it arrives by pub/sub.
    await store.op('SUBSCRIBE', () => store!.subscribed(k.channel));
    if (!running) return;
    const latest = await store.get(k.latest);
    if (latest.ok && latest.value) receive(latest.value);
  }

  // A start of this memberId other than ours held the lease: once is a restart; again means
  // two live processes share the id, and they take the lease from each other.
  let takenFromSameId = 0;
  function noteTakeover(previous: string | undefined): void {
    if (!previous || previous === holder || !previous.startsWith(`${o.memberId} `)) return;
    if (++takenFromSameId === 2) {
      ctx?.logger.warn(
        { memberId: o.memberId },
        'freezeguard: another live process uses this memberId; give each process its own',
      );
    }
  }

  function schedule(ms: number): void {
    if (!running || !ctx) return;
    if (tickTimer !== null) ctx.timers.clearTimeout(tickTimer);
    tickTimer = ctx.timers.setTimeout(() => {
      tickTimer = null;
      void tick();
    }, ms);
  }

  async function tick(): Promise<void> {
    if (!running) return;
    if (ticking) return schedule(o.pollerRenewMs);
    ticking = true;
    try {
      await decide();
    } catch (err) {
      ctx?.logger.warn({ err: errorSummary(err) }, 'freezeguard: poller election failed');
    } finally {
      ticking = false;
      schedule(o.pollerRenewMs);
    }
  }

  function poke(): void {
    if (running) schedule(0);
  }

  const source: MaintenanceSource = {
    kind: `${inner.kind}+fleet`,
    ...(inner.supportsApproval === undefined ? {} : { supportsApproval: inner.supportsApproval }),
    start(context) {
      if (running) return;
      outerLogger = context.logger;
      ctx = { ...context, logger: fleetLogger(context.logger) };
      running = true;
      store = runtime.open(context.logger, context.timers);
      requestVmId(ctx);
      schedule(0);
    },
    async stop() {
      if (!running) return;
      running = false;
      if (tickTimer !== null) ctx?.timers.clearTimeout(tickTimer);
      tickTimer = null;
      unsubscribeDocs?.();
      unsubscribeDocs = null;
      docsKey = null;
      const key = pollKey();
      if (role === 'poller' && store && key !== undefined) {
        // Hand over at once instead of after the lease lapses.
        await store.run(RESIGN, [vmKeys(o.keyPrefix, key).poller], [holder]);
      }
      role = 'starting';
      innerRunning = false;
      await inner.stop().catch(() => {});
      store = null;
      await runtime.release();
    },
    async resolveResourceName() {
      return currentName() ?? (await resolveOnce());
    },
    approve(eventId) {
      // Approvals are rare and must come from a member that decided to approve: always
      // through this process's own inner source (one POST), whoever polls.
      return inner.approve(eventId);
    },
    health(): SourceHealth {
      const own = inner.health();
      if (role !== 'follower') return own;
      return {
        ...followed,
        lastError: followed.lastError ? { ...followed.lastError } : null,
        requests: own.requests,
        // After a good relayed answer a follower waits on the poller, as the poller waits
        // on a hanging GET (GCE answers only on change): silent by design, not blind. The
        // poller's errors are relayed, and a poller that dies loses its lease.
        readingSince:
          followed.consecutiveFailures === 0 && followed.lastSuccessAt !== null
            ? followed.lastSuccessAt
            : null,
      };
    },
  };

  return {
    source,
    get role() {
      return role;
    },
    get resolvedName() {
      return resolvedName;
    },
    poke,
  };
}

/**
 * Fencing: a shared document is taken only from the newest term heard (a poller frozen
 * past its lease, then woken, is an older term) and only once within it.
 *
 * @example
 * ```ts
 * fresh({ epoch: 7, n: 3 }, { epoch: 7, n: 4 }); // true
 * fresh({ epoch: 7, n: 3 }, { epoch: 6, n: 90 }); // false: an older term
 * ```
 */
export function fresh(
  seen: { readonly epoch: number; readonly n: number },
  message: { readonly epoch: number; readonly n: number },
): boolean {
  return message.epoch > seen.epoch || (message.epoch === seen.epoch && message.n > seen.n);
}
