import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  applyFault,
  createSimServer,
  FaultQueue,
  readBody,
  recordRequest,
  type SimServer,
  textSender,
} from '../../http-kit.js';
import type { FaultInput, SimRequest } from '../../types.js';
import {
  API_VERSIONS,
  describeAzureEvent,
  MINIMUM_NOTICE_MS,
  type ScheduleInput,
  type SimEvent,
  type Simulator,
  type SimulatorOptions,
} from './types.js';

/*
 * The Azure IMDS Scheduled Events emulator: the document, its events' lifecycle, IMDS's
 * checks (headers, api-versions, rate limit, ETags), StartRequests, and the control API
 * under /__freezeguard/ for scripts in any language.
 */

const CONTROL_PREFIX = '/__freezeguard';
const sendPlain = textSender({ 'Content-Type': 'text/plain; charset=utf-8' });
const sendJson = textSender({ 'Content-Type': 'application/json; charset=utf-8' });

class SimulatorImpl extends EventEmitter {
  readonly cloud = 'azure' as const;
  url = '';
  port = 0;
  readonly resourceName: string;
  readonly vmId: string;
  readonly approvals: { eventId: string; at: number }[] = [];
  readonly requests: SimRequest[] = [];
  incarnation = 1;
  readonly #events = new Map<string, SimEvent & { autoStart: boolean; completeAfterMs?: number }>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #eventTimers = new Map<string, NodeJS.Timeout[]>();
  readonly #faults = new FaultQueue<FaultInput>();
  readonly #recent: number[] = [];
  readonly #http: SimServer;
  readonly #rate: number;
  readonly #timeScale: number;

  constructor(options: SimulatorOptions) {
    super();
    this.resourceName = options.resourceName ?? 'vm-1';
    this.vmId = options.vmId ?? randomUUID();
    this.#rate = options.rateLimitPerSecond ?? 5;
    this.#timeScale = options.timeScale ?? 1;
    if (!(this.#timeScale > 0))
      throw new TypeError(`Invalid option \`timeScale\`: must be > 0 (got ${options.timeScale})`);
    this.#http = createSimServer(
      (req, res) => this.#handle(req, res),
      (res, err) => this.#send(res, 500, { error: String(err) }),
    );
    this.#http.server.keepAliveTimeout = 5_000;
  }

  async listen(port: number, host: string): Promise<void> {
    ({ port: this.port, url: this.url } = await this.#http.listen(port, host));
  }

  events(): SimEvent[] {
    return [...this.#events.values()].map(({ autoStart: _a, completeAfterMs: _c, ...ev }) => ev);
  }

  document(apiVersion = API_VERSIONS[0]!): {
    DocumentIncarnation: number;
    Events: Record<string, unknown>[];
  } {
    const withSourceFields = apiVersion >= '2019-08-01';
    const withDuration = apiVersion >= '2020-07-01';
    return {
      DocumentIncarnation: this.incarnation,
      Events: this.events().map((ev) => ({
        EventId: ev.EventId,
        EventStatus: ev.EventStatus,
        EventType: ev.EventType,
        ResourceType: ev.ResourceType,
        Resources: [...ev.Resources],
        NotBefore: ev.EventStatus === 'Started' ? '' : new Date(ev.notBefore).toUTCString(),
        ...(withSourceFields ? { Description: ev.Description, EventSource: ev.EventSource } : {}),
        ...(withDuration ? { DurationInSeconds: ev.DurationInSeconds } : {}),
      })),
    };
  }

  schedule(input: ScheduleInput): SimEvent {
    if (typeof input?.type !== 'string' || input.type === '')
      throw new TypeError('schedule(): `type` is required');
    const notice =
      input.notBeforeInMs ?? (MINIMUM_NOTICE_MS[input.type] ?? 15 * 60_000) / this.#timeScale;
    if (!(notice >= 0))
      throw new TypeError(`schedule(): \`notBeforeInMs\` must be ≥ 0 (got ${input.notBeforeInMs})`);
    const event = {
      EventId: input.eventId ?? randomUUID().toUpperCase(),
      EventType: input.type,
      ResourceType: 'VirtualMachine' as const,
      Resources: [...(input.resources ?? [this.resourceName])],
      EventStatus: 'Scheduled' as const,
      // IMDS serves whole seconds.
      notBefore: Math.ceil((Date.now() + notice) / 1000) * 1000,
      Description: input.description ?? describeAzureEvent(input.type),
      EventSource:
        input.source ??
        (input.type === 'Reboot' || input.type === 'Redeploy' ? 'User' : 'Platform'),
      DurationInSeconds: input.durationInSeconds ?? (input.type === 'Freeze' ? 5 : -1),
      autoStart: input.autoStart ?? true,
      ...(input.completeAfterMs === undefined ? {} : { completeAfterMs: input.completeAfterMs }),
    };
    this.#events.set(event.EventId, event);
    if (event.autoStart) {
      this.#eventTimer(
        event.EventId,
        () => this.#startIfScheduled(event.EventId),
        event.notBefore - Date.now(),
      );
    }
    this.#changed();
    return this.#public(event.EventId);
  }

  start(eventId: string): SimEvent {
    const event = this.#get(eventId);
    if (event.EventStatus !== 'Started') {
      const started = { ...event, EventStatus: 'Started' as const };
      this.#events.set(eventId, started);
      if (started.completeAfterMs !== undefined) {
        this.#eventTimer(
          eventId,
          () => this.#events.has(eventId) && this.complete(eventId),
          started.completeAfterMs,
        );
      }
      this.#changed();
      this.emit('started', this.#public(eventId));
    }
    return this.#public(eventId);
  }

  complete(eventId: string): void {
    const event = this.#public(eventId);
    this.#remove(eventId);
    this.emit('completed', event);
  }

  cancel(eventId: string): void {
    const event = this.#public(eventId);
    this.#remove(eventId);
    this.emit('cancelled', event);
  }

  fault(fault: FaultInput): void {
    this.#faults.add(fault);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await this.#http.close();
    this.removeAllListeners();
  }

  #public(eventId: string): SimEvent {
    const { autoStart: _a, completeAfterMs: _c, ...ev } = this.#get(eventId);
    return ev;
  }

  #get(eventId: string) {
    const event = this.#events.get(eventId);
    if (!event) throw new Error(`no event ${eventId} in the document`);
    return event;
  }

  #remove(eventId: string): void {
    this.#get(eventId);
    this.#events.delete(eventId);
    for (const t of this.#eventTimers.get(eventId) ?? []) {
      clearTimeout(t);
      this.#timers.delete(t);
    }
    this.#eventTimers.delete(eventId);
    this.#changed();
  }

  #startIfScheduled(eventId: string): void {
    if (this.#events.get(eventId)?.EventStatus === 'Scheduled') this.start(eventId);
  }

  #eventTimer(eventId: string, fn: () => void, ms: number): void {
    const t = setTimeout(
      () => {
        this.#timers.delete(t);
        fn();
      },
      Math.max(0, ms),
    );
    t.unref();
    this.#timers.add(t);
    const list = this.#eventTimers.get(eventId) ?? [];
    list.push(t);
    this.#eventTimers.set(eventId, list);
  }

  #changed(): void {
    this.incarnation++;
    this.emit('change', { DocumentIncarnation: this.incarnation });
  }

  #send(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    if (typeof body === 'string') sendPlain(res, status, body, headers);
    else sendJson(res, status, JSON.stringify(body), headers);
  }

  #overLimit(now: number): boolean {
    if (this.#rate <= 0) return false;
    while (this.#recent.length > 0 && this.#recent[0]! <= now - 1000) this.#recent.shift();
    this.#recent.push(now);
    return this.#recent.length > this.#rate;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://imds');
    recordRequest(this.requests, this, req, res, url);
    if (url.pathname.startsWith(`${CONTROL_PREFIX}/`)) return this.#control(req, res, url);
    if (!url.pathname.startsWith('/metadata/')) return this.#send(res, 404, { error: 'Not found' });
    // IMDS refuses anything that looks proxied, and anything without the Metadata header.
    if (req.headers['x-forwarded-for'] !== undefined) {
      return this.#send(res, 400, { error: 'Bad request. X-Forwarded-For header is not allowed' });
    }
    if (req.headers.metadata !== 'true') {
      return this.#send(res, 400, { error: 'Bad request. Required metadata header not specified' });
    }
    if (this.#overLimit(Date.now())) return this.#send(res, 429, { error: 'Too many requests' });
    const apiVersion = url.searchParams.get('api-version');
    const compute = /^\/metadata\/instance\/compute\/(name|vmId)$/.exec(url.pathname)?.[1];
    if (compute) {
      if (!apiVersion) return this.#badVersion(res, 'api-version was not specified in the request');
      const value = compute === 'vmId' ? this.vmId : this.resourceName;
      return url.searchParams.get('format') === 'text'
        ? this.#send(res, 200, value)
        : this.#send(res, 200, JSON.stringify(value), {
            'Content-Type': 'application/json; charset=utf-8',
          });
    }
    if (url.pathname !== '/metadata/scheduledevents')
      return this.#send(res, 404, { error: 'Not found' });
    if (!apiVersion) return this.#badVersion(res, 'api-version was not specified in the request');
    if (!API_VERSIONS.includes(apiVersion)) return this.#badVersion(res, 'Invalid version');
    if (req.method === 'POST') return this.#approve(req, res);
    if (req.method !== 'GET') return this.#send(res, 405, { error: 'Method not allowed' });
    const answered = await applyFault(this.#faults.take(), req, {
      status: (status) => this.#send(res, status, { error: `simulated ${status}` }),
      garbage: () =>
        this.#send(res, 200, '{"DocumentIncarnation": "lots", "Events": 7', {
          'Content-Type': 'application/json',
        }),
      oversized: () =>
        this.#send(res, 200, {
          DocumentIncarnation: this.incarnation,
          Events: [],
          padding: 'x'.repeat(1_100_000),
        }),
    });
    if (answered) return;
    const etag = `"${this.incarnation}-${apiVersion}"`;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { ETag: etag });
      res.end();
      return;
    }
    this.#send(res, 200, this.document(apiVersion), { ETag: etag });
  }

  #badVersion(res: ServerResponse, error: string): void {
    this.#send(res, 400, {
      error: `Bad request. ${error}`,
      'newest-versions': API_VERSIONS.slice(0, 3),
    });
  }

  async #approve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch {
      return this.#send(res, 400, { error: 'Bad request. Body is not valid JSON' });
    }
    const requests = (body as { StartRequests?: unknown })?.StartRequests;
    if (
      !Array.isArray(requests) ||
      requests.length === 0 ||
      !requests.every((r) => typeof (r as { EventId?: unknown })?.EventId === 'string')
    ) {
      return this.#send(res, 400, {
        error: 'Bad request. Expected {"StartRequests":[{"EventId":"…"}]}',
      });
    }
    for (const r of requests as { EventId: string }[]) {
      const at = Date.now();
      this.approvals.push({ eventId: r.EventId, at });
      this.emit('approved', { eventId: r.EventId, at });
      if (this.#events.get(r.EventId)?.EventStatus === 'Scheduled') this.start(r.EventId);
    }
    this.#send(res, 200, '');
  }

  async #control(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname.slice(CONTROL_PREFIX.length);
    try {
      if (req.method === 'GET' && path === '/state') {
        return this.#send(res, 200, {
          url: this.url,
          resourceName: this.resourceName,
          document: this.document(),
          approvals: this.approvals,
          requests: this.requests.length,
        });
      }
      if (req.method !== 'POST')
        return this.#send(res, 405, { error: 'control API: use POST (or GET /state)' });
      const text = await readBody(req);
      const body = text ? JSON.parse(text) : {};
      if (path === '/events') return this.#send(res, 201, this.schedule(body));
      const m = /^\/events\/([^/]+)\/(start|complete|cancel)$/.exec(path);
      if (m) {
        const id = decodeURIComponent(m[1]!);
        if (m[2] === 'start') return this.#send(res, 200, this.start(id));
        if (m[2] === 'complete') this.complete(id);
        else this.cancel(id);
        return this.#send(res, 200, { ok: true });
      }
      if (path === '/faults') {
        this.fault(body);
        return this.#send(res, 201, { ok: true });
      }
      if (path === '/faults/clear') {
        this.clearFaults();
        return this.#send(res, 200, { ok: true });
      }
      return this.#send(res, 404, { error: `control API: no route ${req.method} ${path}` });
    } catch (err) {
      return this.#send(res, 400, { error: (err as Error).message });
    }
  }
}

/**
 * Starts the Azure IMDS Scheduled Events emulator on 127.0.0.1 (or `host`), on a free port
 * unless `port` is given. `startSimulator()` is the entry for every cloud.
 *
 * @example
 * ```ts
 * const sim = await startAzureSimulator({ resourceName: 'vm-1' });
 * sim.schedule({ type: 'Freeze', notBeforeInMs: 30_000 });
 * ```
 */
export async function startAzureSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const sim = new SimulatorImpl(options);
  await sim.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  return sim as unknown as Simulator;
}
