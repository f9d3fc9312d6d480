import { createHash, randomInt } from 'node:crypto';
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

/** `instance/maintenance-event` values GCE serves. */
export type GceMaintenanceValue =
  | 'NONE'
  | 'MIGRATE_ON_HOST_MAINTENANCE'
  | 'TERMINATE_ON_HOST_MAINTENANCE'
  | 'SHUTDOWN_ON_HOST_MAINTENANCE'
  | (string & {});

/**
 * An `instance/upcoming-maintenance` window, given with the Compute API's camelCase names;
 * the emulator serves it as the metadata server does: snake_case, every value a string.
 */
export interface GceUpcomingMaintenance {
  readonly type?: 'SCHEDULED' | 'UNSCHEDULED' | (string & {});
  readonly canReschedule?: boolean;
  readonly windowStartTime?: string;
  readonly windowEndTime?: string;
  readonly latestWindowStartTime?: string;
  readonly maintenanceStatus?: 'PENDING' | 'ONGOING' | (string & {});
}

/** A fault of the GCE emulator: the shared ones, plus an answer without `Metadata-Flavor`. */
export interface GcpFaultInput extends FaultInput {
  /** Answer 200 without the `Metadata-Flavor: Google` header (not the metadata server). */
  readonly noFlavor?: boolean;
}

/** Options of the GCE metadata server emulator. */
export interface GcpSimulatorOptions {
  readonly port?: number;
  readonly host?: string;
  /** `instance/name`. Default `vm-1`. */
  readonly resourceName?: string;
  /**
   * `instance/id`, the VM's unique id. Default: a new random 19-digit id per emulator, so
   * that two emulators are two VMs (GCE names are unique per zone only).
   */
  readonly instanceId?: string;
  /** `instance/scheduling/on-host-maintenance`: `MIGRATE` (default) or `TERMINATE`. */
  readonly onHostMaintenance?: 'MIGRATE' | 'TERMINATE';
  /** Serve `instance/upcoming-maintenance` (404 when false, as where GCE does not offer it). Default true. */
  readonly upcomingMaintenance?: boolean;
  /**
   * Whether this VM has had an upcoming-maintenance notification since boot. Until it has
   * (or `setUpcomingMaintenance` is called), the key answers 503 `no notifications have
   * been received yet`, as GCE does. Default false.
   */
  readonly upcomingNotified?: boolean;
}

/** The running GCE metadata server emulator. */
export interface GcpSimulator extends CloudEmulator {
  readonly cloud: 'gcp';
  /** Base URL: pass it as `FREEZEGUARD_IMDS_ENDPOINT` with `FREEZEGUARD_CLOUD=gcp`. */
  readonly url: string;
  readonly port: number;
  readonly resourceName: string;
  /** `instance/id`. */
  readonly instanceId: string;
  readonly requests: readonly SimRequest[];
  /** Current values of the maintenance keys. */
  readonly maintenanceEvent: GceMaintenanceValue;
  readonly preempted: boolean;
  readonly upcoming: GceUpcomingMaintenance | null;
  setMaintenanceEvent(value: GceMaintenanceValue): void;
  setPreempted(value: boolean): void;
  /** Announces a window (null: none, served as `{ }`); the key stops answering 503. */
  setUpcomingMaintenance(value: GceUpcomingMaintenance | null): void;
  /** Faults served instead of the next answers of the maintenance keys. */
  fault(fault: GcpFaultInput): void;
  clearFaults(): void;
  /** Hanging GETs waiting right now. */
  readonly hanging: number;
  on(event: 'change', listener: (info: { key: string; value: string }) => void): this;
  on(event: 'request', listener: (request: SimRequest) => void): this;
  off(event: string, listener: (...args: never[]) => void): this;
  close(): Promise<void>;
}

const PREFIX = '/computeMetadata/v1/';
const send = textSender({
  'Metadata-Flavor': 'Google',
  'Content-Type': 'application/text',
  Server: 'Metadata Server for VM',
  'X-XSS-Protection': '0',
  'X-Frame-Options': 'SAMEORIGIN',
});
/** The 503 body GCE serves on upcoming-maintenance before any notification. */
const GCE_NO_NOTIFICATIONS_BODY =
  '{ "error": "no notifications have been received yet, try again later" }';

/** A window as the metadata server serves it: snake_case keys, string values; `{ }` when empty. */
function gceUpcomingJson(u: GceUpcomingMaintenance | null): string {
  const out: Record<string, string> = {};
  if (u?.canReschedule !== undefined) out.can_reschedule = String(u.canReschedule);
  if (u?.latestWindowStartTime !== undefined)
    out.latest_window_start_time = u.latestWindowStartTime;
  if (u?.maintenanceStatus !== undefined) out.maintenance_status = u.maintenanceStatus;
  if (u?.type !== undefined) out.type = u.type;
  if (u?.windowEndTime !== undefined) out.window_end_time = u.windowEndTime;
  if (u?.windowStartTime !== undefined) out.window_start_time = u.windowStartTime;
  return Object.keys(out).length === 0 ? '{ }' : JSON.stringify(out);
}

const WATCHED = new Set([
  'instance/maintenance-event',
  'instance/preempted',
  'instance/upcoming-maintenance',
]);

class GcpSimulatorImpl extends EventEmitter {
  readonly cloud = 'gcp' as const;
  url = '';
  port = 0;
  readonly resourceName: string;
  readonly instanceId: string;
  readonly requests: SimRequest[] = [];
  maintenanceEvent: GceMaintenanceValue = 'NONE';
  preempted = false;
  upcoming: GceUpcomingMaintenance | null = null;
  readonly #onHostMaintenance: string;
  readonly #offersUpcoming: boolean;
  #notified: boolean;
  readonly #http: SimServer;
  readonly #faults = new FaultQueue<GcpFaultInput>();
  readonly #waiters = new Set<{ key: string; wake: () => void }>();

  constructor(options: GcpSimulatorOptions) {
    super();
    this.resourceName = options.resourceName ?? 'vm-1';
    this.instanceId = options.instanceId ?? randomInstanceId();
    this.#onHostMaintenance = options.onHostMaintenance ?? 'MIGRATE';
    this.#offersUpcoming = options.upcomingMaintenance ?? true;
    this.#notified = options.upcomingNotified ?? false;
    this.#http = createSimServer(
      (req, res) => this.#handle(req, res),
      (res, err) => send(res, 500, String(err)),
    );
  }

  get hanging(): number {
    return this.#waiters.size;
  }

  async listen(port: number, host: string): Promise<void> {
    ({ port: this.port, url: this.url } = await this.#http.listen(port, host));
  }

  setMaintenanceEvent(value: GceMaintenanceValue): void {
    if (typeof value !== 'string' || value === '')
      throw new TypeError(
        'setMaintenanceEvent(): a value such as MIGRATE_ON_HOST_MAINTENANCE is required',
      );
    this.maintenanceEvent = value;
    this.#changed('instance/maintenance-event');
  }

  setPreempted(value: boolean): void {
    this.preempted = value;
    this.#changed('instance/preempted');
  }

  setUpcomingMaintenance(value: GceUpcomingMaintenance | null): void {
    this.upcoming = value;
    this.#notified = true;
    this.#changed('instance/upcoming-maintenance');
  }

  fault(fault: GcpFaultInput): void {
    this.#faults.add(fault);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  async close(): Promise<void> {
    for (const w of this.#waiters) w.wake();
    await this.#http.close();
    this.removeAllListeners();
  }

  #changed(key: string): void {
    for (const w of [...this.#waiters]) if (w.key === key) w.wake();
    this.emit('change', { key, value: this.#value(key) ?? '' });
  }

  #value(key: string): string | null {
    switch (key) {
      case 'instance/name':
        return this.resourceName;
      case 'instance/id':
        return this.instanceId;
      case 'instance/zone':
        return 'projects/123456789012/zones/europe-west1-b';
      case 'instance/scheduling/on-host-maintenance':
        return this.#onHostMaintenance;
      case 'instance/maintenance-event':
        return this.maintenanceEvent;
      case 'instance/preempted':
        return this.preempted ? 'TRUE' : 'FALSE';
      case 'instance/upcoming-maintenance':
        return this.#offersUpcoming && this.#notified ? gceUpcomingJson(this.upcoming) : null;
      default:
        return null;
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://metadata.google.internal');
    recordRequest(this.requests, this, req, res, url);
    // The metadata server refuses proxied requests and requests without its header.
    if (req.headers['x-forwarded-for'] !== undefined)
      return send(res, 403, 'Forbidden: X-Forwarded-For header is not allowed.\n');
    if (!url.pathname.startsWith(PREFIX)) return send(res, 404, 'Not Found\n');
    if (req.headers['metadata-flavor'] !== 'Google')
      return send(res, 403, 'Missing required header "Metadata-Flavor": "Google"\n');
    if (req.method !== 'GET') return send(res, 405, 'Method Not Allowed\n');
    const key = url.pathname.slice(PREFIX.length).replace(/\/$/, '');
    if (key === 'instance/upcoming-maintenance' && !this.#offersUpcoming)
      return send(res, 404, 'Not Found\n');
    if (this.#value(key) === null && key !== 'instance/upcoming-maintenance')
      return send(res, 404, 'Not Found\n');
    const wait = url.searchParams.get('wait_for_change') === 'true';
    const timeoutText = url.searchParams.get('timeout_sec');
    const timeoutSec = timeoutText === null ? 3600 : Number(timeoutText);
    if (wait && !(Number.isInteger(timeoutSec) && timeoutSec > 0))
      return send(res, 400, 'Bad Request: timeout_sec must be a positive integer\n');
    if (WATCHED.has(key)) {
      const fault = this.#faults.take();
      const answered = await applyFault(fault, req, {
        status: (status) => send(res, status, `simulated ${status}\n`),
        garbage: () => send(res, 200, '\u0000not a value{', { ETag: 'garbage0000000000' }),
        oversized: () => send(res, 200, 'X'.repeat(1_100_000)),
      });
      if (answered) return;
      if (fault?.noFlavor) {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 4 });
        return void res.end('NONE');
      }
    }
    if (wait) {
      const lastEtag = url.searchParams.get('last_etag');
      // Without last_etag, or with the current one, the answer waits for the next change.
      if (lastEtag === null || lastEtag === etag(this.#value(key))) {
        await new Promise<void>((resolve) => {
          const waiter = {
            key,
            wake: () => {
              clearTimeout(timer);
              this.#waiters.delete(waiter);
              res.off('close', waiter.wake);
              resolve();
            },
          };
          const timer = setTimeout(waiter.wake, timeoutSec * 1000);
          timer.unref();
          this.#waiters.add(waiter);
          res.once('close', waiter.wake);
        });
        if (res.destroyed || res.writableEnded) return;
      }
    }
    const value = this.#value(key);
    if (key === 'instance/upcoming-maintenance' && value === null)
      return send(res, 503, GCE_NO_NOTIFICATIONS_BODY);
    if (value === null) return send(res, 404, 'Not Found\n');
    const json = url.searchParams.get('alt') === 'json';
    send(res, 200, value, {
      ETag: etag(value),
      ...(json ? { 'Content-Type': 'application/json' } : {}),
    });
  }
}

function etag(value: string | null): string {
  return createHash('sha256')
    .update(value ?? '')
    .digest('hex')
    .slice(0, 16);
}

/**
 * Starts a GCE metadata server emulator: `Metadata-Flavor: Google` required (403 without,
 * 403 with `X-Forwarded-For`) and sent back, ETags, hanging GETs (`wait_for_change`,
 * `last_etag`, `timeout_sec`), `instance/maintenance-event`, `preempted`,
 * `upcoming-maintenance`, `name`, `scheduling/on-host-maintenance`.
 *
 * @example
 * ```ts
 * const sim = await startGcpSimulator({ resourceName: 'vm-1' });
 * sim.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
 * ```
 */
export async function startGcpSimulator(options: GcpSimulatorOptions = {}): Promise<GcpSimulator> {
  const sim = new GcpSimulatorImpl(options);
  await sim.listen(options.port ?? 0, options.host ?? '127.0.0.1');
  return sim as unknown as GcpSimulator;
}

/** A GCE-like instance id: 19 decimal digits, not starting with 0. */
function randomInstanceId(): string {
  let id = String(randomInt(1, 10));
  while (id.length < 19) id += String(randomInt(0, 10));
  return id;
}
