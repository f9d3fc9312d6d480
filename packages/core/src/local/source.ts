import { parseMaintenanceDocument } from '../document.js';
import { errorSummary, FreezeguardError, type FreezeguardErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MaintenanceSource, SourceContext, SourceHealth } from '../sources/source.js';
import type { Clock } from '../time/clock.js';
import type { WireMessage } from './wire.js';

/** What the wrapped source needs from the coordinator. */
export interface LocalSourceHost {
  /** True while another process polls and this one reads what it relays. */
  following(): boolean;
  /** Settles once the process knows its role (or acts alone). */
  readonly ready: Promise<void>;
  /** The guard starts the source: join the VM's processes. */
  attach(context: SourceContext): void;
  /** The guard stops the source. */
  detach(): Promise<void>;
  /** This VM's name from the polling process, or null (not following, no answer). */
  askLeaderForName(): Promise<string | null>;
  clock(): Clock;
  logger(): Logger;
}

/** The wrapped source and the entry for what the polling process relays. */
export interface LocalSource {
  readonly source: MaintenanceSource;
  /** A relayed document (`doc`, `welcome`) or failed read (`err`), already fenced. */
  deliver(message: WireMessage): void;
  /** This VM's name read by this process (once, then cached; failures are asked again). */
  resourceName(): Promise<string | undefined>;
}

/**
 * Wraps the guard's source: the polling process runs `inner` (the coordinator starts and
 * stops it), the others get what it relays here; the VM name comes from the poller too, so
 * eight processes starting together send one request, not eight. Approvals always go
 * through this process's own `inner` (one POST, from the process chosen to approve).
 *
 * @example
 * ```ts
 * const { source, deliver } = createLocalSource(azureScheduledEvents(), host);
 * ```
 */
export function createLocalSource(inner: MaintenanceSource, host: LocalSourceHost): LocalSource {
  let ctx: SourceContext | null = null;
  const followed = {
    lastSuccessAt: null as number | null,
    lastErrorAt: null as number | null,
    lastError: null as { code: string; message: string } | null,
    consecutiveFailures: 0,
  };

  let name: Promise<string | undefined> | null = null;

  function resourceName(): Promise<string | undefined> {
    name ??= inner.resolveResourceName().then(
      (n) => {
        if (n === undefined) name = null;
        return n;
      },
      (err: unknown) => {
        name = null;
        throw err;
      },
    );
    return name;
  }

  function deliver(m: WireMessage): void {
    if (!ctx) return;
    const now = host.clock().now();
    if ((m.t === 'doc' || m.t === 'welcome') && m.document) {
      try {
        const document = parseMaintenanceDocument(m.document);
        followed.lastSuccessAt = now;
        followed.consecutiveFailures = 0;
        ctx.onDocument(document);
      } catch (err) {
        host.logger().debug({ err: errorSummary(err) }, 'freezeguard: bad relayed document');
      }
    } else if (m.t === 'err') {
      const e = (m.error ?? {}) as { code?: string; message?: string };
      const error = new FreezeguardError(
        (e.code ?? 'ERR_IMDS_UNREACHABLE') as FreezeguardErrorCode,
        `${e.message ?? 'read failed'} (read by the polling process)`,
      );
      followed.lastErrorAt = now;
      followed.lastError = { code: error.code, message: error.message };
      followed.consecutiveFailures = Number(m.streak) || followed.consecutiveFailures + 1;
      ctx.onError(error, followed.consecutiveFailures);
    }
  }

  const source: MaintenanceSource = {
    kind: `${inner.kind}+local`,
    ...(inner.supportsApproval === undefined ? {} : { supportsApproval: inner.supportsApproval }),
    start(context) {
      if (ctx) return;
      ctx = context;
      host.attach(context);
    },
    async stop() {
      ctx = null;
      await host.detach();
    },
    async resolveResourceName() {
      await host.ready;
      return (await host.askLeaderForName()) ?? resourceName();
    },
    ...(inner.resolveVmId ? { resolveVmId: () => inner.resolveVmId!() } : {}),
    approve: (eventId) => inner.approve(eventId),
    health(): SourceHealth {
      const own = inner.health();
      if (!host.following()) return own;
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
  return { source, deliver, resourceName };
}
