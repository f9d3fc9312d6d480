import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  applyFault,
  createSimServer,
  FaultQueue,
  recordRequest,
  type SimServer,
  textSender,
} from '../../http-kit.js';
import type { CloudEmulator, FaultInput, SimRequest } from '../../types.js';

/** EC2 scheduled-event codes. */
export type Ec2EventCode =
  | 'instance-reboot'
  | 'system-reboot'
  | 'system-maintenance'
  | 'instance-retirement'
  | 'instance-stop'
  | (string & {});

/** One entry of `events/maintenance/scheduled`, as EC2 serves it. */
export interface Ec2ScheduledEvent {
  readonly Code: Ec2EventCode;
  readonly Description: string;
  readonly EventId: string;
  /** `21 Jan 2019 09:00:43 GMT` */
  readonly NotBefore: string;
  readonly NotAfter?: string;
  readonly State: 'active' | 'completed' | 'canceled';
}

/** A fault of the EC2 emulator, optionally limited to one path. */
export interface AwsFaultInput extends FaultInput {
  /** Only answers of this meta-data path, e.g. `events/maintenance/scheduled`, or `api/token` (status only). */
  readonly path?: string;
}

/** Options of the EC2 IMDS emulator. */
export interface AwsSimulatorOptions {
  readonly port?: number;
  readonly host?: string;
  /** `instance-id`. Default `i-0123456789abcdef0`. */
  readonly resourceName?: string;
  /**
   * `required`: IMDSv2 only (a GET without a valid token gets 401); `optional` (default):
   * IMDSv1 GETs work too; `v1-only`: the token call is not there (PUT answers 404).
   */
  readonly httpTokens?: 'required' | 'optional' | 'v1-only';
  /**
   * `HttpPutResponseHopLimit`: how many network hops the answer to the token PUT may
   * travel. Default 2. When `clientHops` exceeds it, the PUT is never answered (the
   * answer's packets expire on the way), as for a container behind a hop limit of 1.
   */
  readonly httpPutResponseHopLimit?: number;
  /** How many hops away the client is: 1 on the instance, 2 from a container on a bridge. Default 1. */
  readonly clientHops?: number;
  /**
   * Keep completed and canceled events in `events/maintenance/scheduled` (with their State)
   * instead of moving them to `events/maintenance/history`. Default false.
   */
  readonly keepFinishedInScheduled?: boolean;
}

/** The running EC2 IMDS emulator. */
export interface AwsSimulator extends CloudEmulator {
  readonly cloud: 'aws';
  /** Base URL: pass it as `FREEZEGUARD_IMDS_ENDPOINT` with `FREEZEGUARD_CLOUD=aws`. */
  readonly url: string;
  readonly port: number;
  /** The instance id. */
  readonly resourceName: string;
  readonly requests: readonly SimRequest[];
  /** Tokens handed out so far. */
  readonly tokensIssued: number;
  /** A Spot interruption notice: `spot/instance-action` answers it from now on. */
  interruptSpot(input?: {
    readonly action?: 'terminate' | 'stop' | 'hibernate';
    readonly inMs?: number;
  }): { action: string; time: string };
  /** Withdraws the Spot notice (404 again). */
  clearSpot(): void;
  /** A rebalance recommendation (`events/recommendations/rebalance`). */
  recommendRebalance(): { noticeTime: string };
  /** Adds an active scheduled event, NotBefore `notBeforeInMs` from now (default 2 weeks). */
  scheduleEvent(input: {
    readonly code: Ec2EventCode;
    readonly notBeforeInMs?: number;
    readonly durationMs?: number;
    readonly description?: string;
    readonly eventId?: string;
  }): Ec2ScheduledEvent;
  /** Marks an event completed and moves it to `events/maintenance/history`, as EC2 does. */
  completeEvent(eventId: string): void;
  /** Marks an event canceled and moves it to `events/maintenance/history`, as EC2 does. */
  cancelEvent(eventId: string): void;
  /** Every event: the active ones, then those in history. */
  events(): Ec2ScheduledEvent[];
  /** What `events/maintenance/scheduled` lists. */
  scheduled(): Ec2ScheduledEvent[];
  /** What `events/maintenance/history` lists (completed and canceled events). */
  history(): Ec2ScheduledEvent[];
  /** Changes `HttpPutResponseHopLimit` (as `modify-instance-metadata-options` does). */
  setPutResponseHopLimit(hops: number): void;
  /** Token PUTs left unanswered because of the hop limit. */
  readonly unansweredPuts: number;
  /** Makes every token handed out so far invalid (the next GET with one gets 401). */
  revokeTokens(): void;
  /** Faults served instead of the next answers of the event paths (or of one, with `path`). */
  fault(fault: AwsFaultInput): void;
  clearFaults(): void;
  on(event: 'change', listener: (info: { what: string }) => void): this;
  on(event: 'request', listener: (request: SimRequest) => void): this;
  off(event: string, listener: (...args: never[]) => void): this;
  close(): Promise<void>;
}

const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
const send = textSender({ 'Content-Type': 'text/plain', Server: 'EC2ws' });
const EVENT_PATHS = new Set([
  '/latest/meta-data/spot/instance-action',
  '/latest/meta-data/events/maintenance/scheduled',
  '/latest/meta-data/events/recommendations/rebalance',
  '/latest/meta-data/events/maintenance/history',
]);

/** EC2 writes scheduled-event dates as `21 Jan 2019 09:00:43 GMT`. */
export function ec2Date(ms: number): string {
  // toUTCString() gives 'Mon, 21 Jan 2019 09:00:43 GMT'; EC2 drops the weekday.
  return new Date(Math.floor(ms / 1000) * 1000).toUTCString().slice(5);
}

/** Spot notices use ISO 8601 without milliseconds: `2017-09-18T08:22:00Z`. */
function isoSeconds(ms: number): string {
  return `${new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}

class AwsSimulatorImpl extends EventEmitter {
  readonly cloud = 'aws' as const;
  url = '';
  port = 0;
  readonly resourceName: string;
  readonly requests: SimRequest[] = [];
  tokensIssued = 0;
  unansweredPuts = 0;
  readonly #mode: 'required' | 'optional' | 'v1-only';
  #hopLimit: number;
  readonly #clientHops: number;
  readonly #keepFinished: boolean;
  readonly #history = new Map<string, Ec2ScheduledEvent>();
  readonly #held = new Set<ServerResponse>();
  readonly #tokens = new Map<string, number>();
  readonly #events = new Map<string, Ec2ScheduledEvent>();
  #spot: { action: string; time: string } | null = null;
  #rebalance: { noticeTime: string } | null = null;
  readonly #faults = new FaultQueue<AwsFaultInput>();
  readonly #http: SimServer;

  constructor(options: AwsSimulatorOptions) {
    super();
    this.resourceName = options.resourceName ?? 'i-0123456789abcdef0';
    this.#mode = options.httpTokens ?? 'optional';
    this.#hopLimit = checkHops(options.httpPutResponseHopLimit ?? 2, 'httpPutResponseHopLimit');
    this.#clientHops = checkHops(options.clientHops ?? 1, 'clientHops');
    this.#keepFinished = options.keepFinishedInScheduled ?? false;
    this.#http = createSimServer(
      (req, res) => this.#handle(req, res),
      (res, err) => send(res, 500, String(err)),
    );
  }

  async listen(port: number, host: string): Promise<void> {
    ({ port: this.port, url: this.url } = await this.#http.listen(port, host));
  }

  interruptSpot(input: { action?: string; inMs?: number } = {}): { action: string; time: string } {
    this.#spot = {
      action: input.action ?? 'terminate',
      time: isoSeconds(Date.now() + (input.inMs ?? 120_000)),
    };
    this.emit('change', { what: 'spot/instance-action' });
    return { ...this.#spot };
  }

  clearSpot(): void {
    this.#spot = null;
    this.emit('change', { what: 'spot/instance-action' });
  }

  recommendRebalance(): { noticeTime: string } {
    this.#rebalance = { noticeTime: isoSeconds(Date.now()) };
    this.emit('change', { what: 'events/recommendations/rebalance' });
    return { ...this.#rebalance };
  }

  scheduleEvent(input: {
    code: string;
    notBeforeInMs?: number;
    durationMs?: number;
    description?: string;
    eventId?: string;
  }): Ec2ScheduledEvent {
    if (typeof input?.code !== 'string' || input.code === '')
      throw new TypeError('scheduleEvent(): `code` is required');
    const start = Date.now() + (input.notBeforeInMs ?? 14 * 86_400_000);
    const event: Ec2ScheduledEvent = {
      Code: input.code,
      Description: input.description ?? describe(input.code),
      EventId: input.eventId ?? `instance-event-${randomBytes(8).toString('hex').slice(0, 17)}`,
      NotBefore: ec2Date(start),
      NotAfter: ec2Date(start + (input.durationMs ?? 2 * 3_600_000)),
      State: 'active',
    };
    this.#events.set(event.EventId, event);
    this.emit('change', { what: 'events/maintenance/scheduled' });
    return event;
  }

  completeEvent(eventId: string): void {
    this.#setState(eventId, 'completed', '[Completed]');
  }

  cancelEvent(eventId: string): void {
    this.#setState(eventId, 'canceled', '[Canceled]');
  }

  events(): Ec2ScheduledEvent[] {
    return [...this.#events.values(), ...this.#history.values()];
  }

  scheduled(): Ec2ScheduledEvent[] {
    return [...this.#events.values()];
  }

  history(): Ec2ScheduledEvent[] {
    return [...this.#history.values()];
  }

  setPutResponseHopLimit(hops: number): void {
    this.#hopLimit = checkHops(hops, 'setPutResponseHopLimit()');
  }

  revokeTokens(): void {
    this.#tokens.clear();
  }

  fault(fault: AwsFaultInput): void {
    this.#faults.add(fault);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  async close(): Promise<void> {
    for (const res of this.#held) res.destroy();
    this.#held.clear();
    await this.#http.close();
    this.removeAllListeners();
  }

  #setState(eventId: string, state: 'completed' | 'canceled', prefix: string): void {
    const event = this.#events.get(eventId);
    if (event?.State !== 'active') throw new Error(`no active scheduled event ${eventId}`);
    const finished = { ...event, State: state, Description: `${prefix} ${event.Description}` };
    if (this.#keepFinished) this.#events.set(eventId, finished);
    else {
      this.#events.delete(eventId);
      this.#history.set(eventId, finished);
    }
    this.emit('change', { what: 'events/maintenance/scheduled' });
  }

  #validToken(value: string | string[] | undefined): boolean {
    if (typeof value !== 'string') return false;
    const expires = this.#tokens.get(value);
    if (expires === undefined) return false;
    if (Date.now() >= expires) {
      this.#tokens.delete(value);
      return false;
    }
    return true;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://169.254.169.254');
    recordRequest(this.requests, this, req, res, url);
    if (url.pathname === '/latest/api/token') return this.#token(req, res);
    if (req.method !== 'GET') return send(res, 405, '');
    const presented = req.headers[TOKEN_HEADER];
    if (presented !== undefined || this.#mode === 'required') {
      // A token that is present must be valid, even where IMDSv1 is allowed.
      if (this.#mode === 'v1-only' ? false : !this.#validToken(presented))
        return send(res, 401, '');
    }
    // Answers to a GET with a token say how long the token has left, in whole seconds.
    const left =
      typeof presented === 'string' && this.#mode !== 'v1-only'
        ? this.#tokens.get(presented)
        : undefined;
    const ttl: Record<string, string> =
      left === undefined ? {} : { 'X-Aws-Ec2-Metadata-Token-Ttl-Seconds': ttlLeft(left) };
    const answer = (status: number, body: string) => send(res, status, body, ttl);
    if (!url.pathname.startsWith('/latest/meta-data/')) return send(res, 404, notFound());
    if (EVENT_PATHS.has(url.pathname)) {
      const fault = this.#faults.take(
        (f) => f.path === undefined || url.pathname === `/latest/meta-data/${f.path}`,
      );
      const answered = await applyFault(fault, req, {
        status: (status) => send(res, status, `simulated ${status}`),
        garbage: () => send(res, 200, '[{"Code": 7, "NotBefore": "soon"'),
        oversized: () => send(res, 200, `[${' '.repeat(1_100_000)}]`),
      });
      if (answered) return;
    }
    const path = url.pathname.slice('/latest/meta-data/'.length);
    switch (path) {
      case 'instance-id':
        return answer(200, this.resourceName);
      case 'instance-type':
        return answer(200, 'm5.large');
      case 'placement/availability-zone':
        return answer(200, 'eu-west-1a');
      case 'spot/instance-action':
        return this.#spot ? answer(200, JSON.stringify(this.#spot)) : answer(404, notFound());
      case 'events/recommendations/rebalance':
        return this.#rebalance
          ? answer(200, JSON.stringify(this.#rebalance))
          : answer(404, notFound());
      case 'events/maintenance/scheduled':
        return answer(200, JSON.stringify(this.scheduled(), null, 2));
      case 'events/maintenance/history':
        return answer(200, JSON.stringify(this.history(), null, 2));
      default:
        return answer(404, notFound());
    }
  }

  #token(req: IncomingMessage, res: ServerResponse) {
    if (this.#mode === 'v1-only') return send(res, 404, notFound());
    if (req.method !== 'PUT') return send(res, 405, '');
    const fault = this.#faults.take((f) => f.path === 'api/token' && Boolean(f.status));
    if (fault) return send(res, fault.status!, `simulated ${fault.status}`);
    // A token must never be handed through a proxy or forwarder.
    if (req.headers['x-forwarded-for'] !== undefined) return send(res, 403, '');
    const ttl = Number(req.headers[TTL_HEADER]);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21_600) return send(res, 400, '');
    if (this.#clientHops > this.#hopLimit) {
      // The answer's packets expire before they reach the caller: it waits for nothing.
      this.unansweredPuts++;
      this.#held.add(res);
      res.once('close', () => this.#held.delete(res));
      return;
    }
    const token = `AQAEA${randomBytes(30).toString('base64url')}==`;
    this.#tokens.set(token, Date.now() + ttl * 1000);
    this.tokensIssued++;
    send(res, 200, token, { 'X-Aws-Ec2-Metadata-Token-Ttl-Seconds': String(ttl) });
  }
}

function checkHops(hops: number, what: string): number {
  if (!(Number.isInteger(hops) && hops >= 1 && hops <= 64))
    throw new TypeError(`${what}: hops must be an integer from 1 to 64 (got ${hops})`);
  return hops;
}

/** Seconds a token valid until `expires` has left, as IMDS reports them. */
function ttlLeft(expires: number): string {
  return String(Math.max(0, Math.floor((expires - Date.now()) / 1000)));
}

function notFound(): string {
  return '<?xml version="1.0" encoding="iso-8859-1"?>\n<html><head><title>404 - Not Found</title></head><body><h1>404 - Not Found</h1></body></html>\n';
}

function describe(code: string): string {
  switch (code) {
    case 'instance-reboot':
      return 'The instance is scheduled for a reboot';
    case 'system-reboot':
      return 'scheduled reboot';
    case 'system-maintenance':
      return 'Scheduled network maintenance';
    case 'instance-retirement':
      return 'The instance is running on degraded hardware';
    case 'instance-stop':
      return 'The instance is running on degraded hardware';
    default:
      return 'scheduled event';
  }
}

/**
 * Starts an EC2 instance metadata (IMDS) emulator: IMDSv2 session tokens (PUT with a TTL
 * of 1–21600 s, 400 otherwise, 403 through a forwarder; 401 for a missing, expired or
 * revoked token where required), `spot/instance-action`, `events/maintenance/scheduled`
 * with EC2's date format and states, `events/recommendations/rebalance`, `instance-id`.
 *
 * @example
 * ```ts
 * const sim = await startAwsSimulator({ httpTokens: 'required' });
 * sim.interruptSpot({ action: 'terminate', inMs: 120_000 });
 * ```
 */
export async function startAwsSimulator(options: AwsSimulatorOptions = {}): Promise<AwsSimulator> {
  const sim = new AwsSimulatorImpl(options);
  await sim.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  return sim as unknown as AwsSimulator;
}
