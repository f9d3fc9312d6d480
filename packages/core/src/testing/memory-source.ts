import { parseScheduledEventsDocument } from '../document.js';
import type { MaintenanceDocument } from '../event.js';
import type { MaintenanceSource, SourceContext, SourceHealth } from '../sources/source.js';

/**
 * A {@link MaintenanceSource} fed by the test: `publish()` a document (object or JSON
 * text), read back the approvals. For unit tests of code around a guard; the real IMDS
 * protocol is exercised against `@freezeguard/simulator`.
 *
 * @example
 * ```ts
 * const source = new MemorySource({ resourceName: 'vm-1' });
 * const guard = createGuard({ source, clock, timers: clock });
 * await guard.start();
 * source.publish({ DocumentIncarnation: 1, Events: [] });
 * ```
 */
export class MemorySource implements MaintenanceSource {
  readonly kind = 'memory';
  readonly approvals: string[] = [];
  #ctx: SourceContext | null = null;
  #resourceName: string | undefined;
  #nameError: Error | null;
  #failures = 0;
  #incarnation = 1000;
  #lastSuccessAt: number | null = null;

  constructor(options: { readonly resourceName?: string; readonly nameError?: Error } = {}) {
    this.#resourceName = options.resourceName;
    this.#nameError = options.nameError ?? null;
  }

  get started(): boolean {
    return this.#ctx !== null;
  }

  start(context: SourceContext): void {
    this.#ctx = context;
  }

  async stop(): Promise<void> {
    this.#ctx = null;
  }

  /** Makes `resolveResourceName()` answer `name` from now on. */
  setResourceName(name: string | undefined, error: Error | null = null): void {
    this.#resourceName = name;
    this.#nameError = error;
  }

  async resolveResourceName(): Promise<string | undefined> {
    if (this.#nameError) throw this.#nameError;
    return this.#resourceName;
  }

  async approve(eventId: string): Promise<void> {
    this.approvals.push(eventId);
  }

  /**
   * Publishes a document listing `events`, each filled in for this VM: a Started Freeze
   * unless told otherwise (`NotBefore` 15 minutes ahead for a Scheduled one). The
   * incarnation goes up by one; `announce()` with no event empties the document.
   *
   * @example
   * ```ts
   * source.announce({ EventId: 'E1' });                              // a Freeze under way
   * source.announce({ EventType: 'Reboot', EventStatus: 'Scheduled' }); // a reboot ahead
   * source.announce();                                               // it is over
   * ```
   */
  announce(...events: Record<string, unknown>[]): MaintenanceDocument {
    const now = this.#ctx?.clock.now() ?? Date.now();
    return this.publish({
      DocumentIncarnation: ++this.#incarnation,
      Events: events.map((over, i) => {
        const status = over.EventStatus ?? 'Started';
        return {
          EventId: `E-${this.#incarnation}-${i}`,
          EventType: 'Freeze',
          EventStatus: status,
          ResourceType: 'VirtualMachine',
          Resources: [this.#resourceName ?? 'vm-1'],
          NotBefore: status === 'Started' ? '' : new Date(now + 15 * 60_000).toUTCString(),
          DurationInSeconds: 5,
          ...over,
        };
      }),
    });
  }

  /** Delivers a document to the guard, as a poll would. */
  publish(document: unknown): MaintenanceDocument {
    const parsed = parseScheduledEventsDocument(document);
    this.#failures = 0;
    this.#lastSuccessAt = this.#ctx?.clock.now() ?? null;
    this.#ctx?.onDocument(parsed);
    return parsed;
  }

  health(): SourceHealth {
    return {
      lastSuccessAt: this.#lastSuccessAt,
      lastErrorAt: null,
      lastError: null,
      consecutiveFailures: this.#failures,
      requests: 0,
    };
  }
}
