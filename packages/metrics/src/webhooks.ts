/**
 * `@freezeguard/metrics/webhooks` — POSTs the milestones of the maintenance lifecycle
 * (announced, prepared, frozen, resumed, shutdown) to a URL, Slack-compatible. An entry
 * of its own: metrics scrape, webhooks push, and neither needs the other.
 *
 * @example
 * ```ts
 * import { webhooks } from '@freezeguard/metrics/webhooks';
 * webhooks(guard, { url: process.env.SLACK_WEBHOOK_URL! });
 * ```
 *
 * @module
 */
import type { CycleOutcome, Guard, GuardState, Logger } from '@freezeguard/core';
import { assertGuard, assertOption, errorSummary, withDefaults } from '@freezeguard/core/adapter';
import { OnceEach } from './observe.js';

/** The lifecycle milestones a webhook can announce. */
export type WebhookNotification = 'announced' | 'prepared' | 'frozen' | 'resumed' | 'shutdown';

/** Every notification, in lifecycle order. */
export const WEBHOOK_NOTIFICATIONS: readonly WebhookNotification[] = [
  'announced',
  'prepared',
  'frozen',
  'resumed',
  'shutdown',
];

/** Options of {@link webhooks}. */
export interface WebhookOptions {
  /** Where to POST (http or https), e.g. a Slack incoming-webhook URL. */
  readonly url: string | URL;
  /** Per request; the request is abandoned after it. Default 3000 ms. */
  readonly timeoutMs?: number;
  /** Which milestones to send. Default all of {@link WEBHOOK_NOTIFICATIONS}. */
  readonly events?: readonly WebhookNotification[];
  /** Extra request headers (authorisation…). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Requests allowed in flight at once; more are dropped and logged. Default 4. */
  readonly maxInFlight?: number;
  /** Default: the guard's. */
  readonly logger?: Logger;
}

/** The JSON body POSTed. `text` makes it a valid Slack incoming-webhook message. */
export interface WebhookPayload {
  readonly text: string;
  readonly notification: WebhookNotification;
  /** ISO time the milestone was reached. */
  readonly at: string;
  /** This VM's name, when known. */
  readonly resource: string | null;
  readonly state: GuardState;
  readonly eventIds: readonly string[];
  readonly eventType: string | null;
  /** `announced`: the event's NotBefore as the document gave it. */
  readonly notBefore?: string | null;
  /** `resumed`: how the cycle ended. */
  readonly outcome?: CycleOutcome;
  /** `resumed`: prepare start to ready again, ms. */
  readonly outOfRotationMs?: number;
  /** `resumed`: the pauses measured during the cycle, ms. */
  readonly pausedMs?: number;
}

/** What {@link webhooks} returns. */
export interface WebhooksHandle {
  /** Requests in flight. */
  readonly inFlight: number;
  /** Resolves when every request sent so far has finished (answered, failed or timed out). */
  settled(): Promise<void>;
  /** Stops sending; requests in flight finish on their own. */
  close(): void;
}

const DEFAULTS = {
  timeoutMs: 3000,
  events: WEBHOOK_NOTIFICATIONS,
  headers: {} as Readonly<Record<string, string>>,
  maxInFlight: 4,
};

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * POSTs a small JSON document (with a Slack-compatible `text`) when maintenance is
 * announced, the instance is prepared, frozen, back, or shutting down. Fire and forget:
 * a request never blocks the lifecycle, is abandoned after `timeoutMs`, and is never
 * retried — a retry would land in the freeze it announces.
 *
 * @example
 * ```ts
 * import { webhooks } from '@freezeguard/metrics/webhooks';
 * webhooks(guard, { url: process.env.SLACK_WEBHOOK_URL!, events: ['announced', 'resumed'] });
 * ```
 */
export function webhooks(guard: Guard, options: WebhookOptions): WebhooksHandle {
  assertGuard(guard);
  const o = withDefaults(DEFAULTS, options);
  let url: URL | null = null;
  try {
    url = new URL(String(options?.url));
  } catch {}
  assertOption(
    url !== null && (url.protocol === 'http:' || url.protocol === 'https:'),
    'url',
    'must be an http(s) URL',
    url === null ? options?.url : url.origin,
  );
  const target = url as URL;
  assertOption(
    Number.isFinite(o.timeoutMs) && o.timeoutMs > 0,
    'timeoutMs',
    'must be > 0',
    o.timeoutMs,
  );
  assertOption(
    Array.isArray(o.events) && o.events.every((e) => WEBHOOK_NOTIFICATIONS.includes(e)),
    'events',
    `must list some of ${WEBHOOK_NOTIFICATIONS.join(', ')}`,
    o.events,
  );
  assertOption(
    Number.isInteger(o.maxInFlight) && o.maxInFlight > 0,
    'maxInFlight',
    'must be an integer > 0',
    o.maxInFlight,
  );
  const logger = () => options.logger ?? guard.logger;
  const wanted = new Set(o.events);
  // Webhook URLs carry their secret in the path: logs name the origin only.
  const where = target.origin;
  const pending = new Set<Promise<void>>();

  async function post(payload: WebhookPayload): Promise<void> {
    const controller = new AbortController();
    const timer = guard.timers.setTimeout(() => controller.abort(), o.timeoutMs);
    try {
      const res = await fetch(target, {
        method: 'POST',
        headers: { ...o.headers, 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        signal: controller.signal,
      });
      await res.arrayBuffer().catch(() => {});
      if (!res.ok)
        logger().warn(
          { url: where, notification: payload.notification, status: res.status },
          'freezeguard: webhook answered an error',
        );
    } catch (err) {
      logger().warn(
        {
          url: where,
          notification: payload.notification,
          err: controller.signal.aborted
            ? { message: `timed out after ${o.timeoutMs} ms` }
            : errorSummary(err),
        },
        'freezeguard: webhook failed (not retried)',
      );
    } finally {
      guard.timers.clearTimeout(timer);
    }
  }

  // Each milestone of an event is sent once: a document listing an EventId again, twice,
  // or after it left, or a second drain of the same event, sends nothing new.
  const sent = new OnceEach();

  function send(
    notification: WebhookNotification,
    text: string,
    facts: Partial<WebhookPayload> = {},
    variant = '',
  ): void {
    if (closed || !wanted.has(notification)) return;
    if (pending.size >= o.maxInFlight) {
      logger().warn(
        { url: where, notification, inFlight: pending.size },
        'freezeguard: webhook dropped: too many requests in flight',
      );
      return;
    }
    const ids = facts.eventIds ?? guard.status().cycle?.eventIds ?? [];
    if (ids.length > 0 && !sent.first(`${notification}:${variant}:${[...ids].sort().join(',')}`))
      return;
    const cycle = guard.status().cycle;
    const resource = guard.resourceName ?? null;
    const payload: WebhookPayload = {
      text: `freezeguard${resource ? ` ${resource}` : ''}: ${text}`,
      notification,
      at: new Date(guard.clock.now()).toISOString(),
      resource,
      state: guard.state,
      eventIds: cycle?.eventIds ?? [],
      eventType: null,
      ...facts,
    };
    const p = post(payload).finally(() => pending.delete(p));
    pending.add(p);
  }

  function cycleType(): { eventIds: readonly string[]; eventType: string | null } {
    const status = guard.status();
    const ids = status.cycle?.eventIds ?? [];
    const first = status.events.find((e) => e.eventId === ids[0]);
    return { eventIds: ids, eventType: first?.eventType ?? null };
  }

  let closed = false;
  const offs = [
    guard.on('event', (document) => {
      let reports: ReturnType<Guard['status']>['events'] | null = null;
      for (const event of document.events) {
        // Relevance first: an event listed before this VM's name was known is announced
        // once it is; send() then keeps it to once per EventId.
        reports ??= guard.status().events;
        const report = reports.find((r) => r.eventId === event.id);
        if (!report?.relevant) continue;
        // As IMDS words it (RFC 1123), the form people paste into a ticket.
        const notBefore = event.notBefore === null ? null : new Date(event.notBefore).toUTCString();
        const when = notBefore ? `not before ${notBefore}` : 'starting now';
        send('announced', `${event.kind} ${event.id} announced, ${when}`, {
          eventIds: [event.id],
          eventType: event.kind,
          notBefore,
        });
      }
    }),
    guard.on('state', (state, previous) => {
      // A Started event goes from preparing straight to frozen: prepared is then said too.
      const left = state === 'ready' || state === 'frozen' || state === 'shutting-down';
      if (previous === 'preparing' && left && guard.status().cycle?.prepared) {
        const c = cycleType();
        send('prepared', `out of rotation and prepared for ${c.eventType ?? 'maintenance'}`, c);
      }
      if (state === 'frozen') {
        const c = cycleType();
        send('frozen', `${c.eventType ?? 'maintenance'} under way`, c);
      }
    }),
    guard.on('shutdown', (event) =>
      send('shutdown', `${event.kind} ${event.id}: shutting down, not coming back`, {
        eventIds: [event.id],
        eventType: event.kind,
      }),
    ),
    guard.on('cycle', (info) => {
      if (info.outcome === 'shutdown') return;
      const text =
        info.outcome === 'cancelled'
          ? `${info.eventType} cancelled; back in rotation after ${seconds(info.outOfRotationMs)}`
          : `back in rotation after ${seconds(info.outOfRotationMs)} (paused ${seconds(info.pausedMs)})` +
            (info.outcome === 'failsafe' ? ', resumed by the fail-safe' : '');
      send(
        'resumed',
        text,
        {
          eventIds: info.eventIds,
          eventType: info.eventType,
          outcome: info.outcome,
          outOfRotationMs: info.outOfRotationMs,
          pausedMs: info.pausedMs,
        },
        info.outcome,
      );
    }),
  ];

  return {
    get inFlight() {
      return pending.size;
    },
    async settled() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    close() {
      closed = true;
      for (const off of offs.splice(0)) off();
    },
  };
}
