import { FreezeguardError, toError } from '../errors.js';
import type { MaintenanceEvent } from '../event.js';
import type { Logger } from '../logger.js';
import type { MaintenanceSource } from '../sources/source.js';

/**
 * Approvals sent to the platform: each EventId once (a retry after a lost answer could
 * approve twice, and the event starts at NotBefore anyway), a failure reported as
 * `ERR_APPROVAL_FAILED`.
 *
 * @example
 * ```ts
 * const approvals = new Approvals(source, logger, false, { approved: () => evaluate(), failed: (e) => emit('error', e) });
 * approvals.send(event);
 * ```
 */
export class Approvals {
  /** EventIds approved or being approved. */
  readonly sent = new Set<string>();
  /** Observe mode: EventIds it would have approved (each logged once). */
  readonly observed = new Set<string>();
  readonly #observe: boolean;
  readonly #source: MaintenanceSource;
  readonly #logger: Logger;
  readonly #on: {
    approved(event: MaintenanceEvent): void;
    failed(error: FreezeguardError): void;
  };

  constructor(
    source: MaintenanceSource,
    logger: Logger,
    observe: boolean,
    on: { approved(event: MaintenanceEvent): void; failed(error: FreezeguardError): void },
  ) {
    this.#source = source;
    this.#logger = logger;
    this.#observe = observe;
    this.#on = on;
  }

  /** What the policy counts as approved: sent, or (observing) would have been. */
  get decided(): ReadonlySet<string> {
    return this.#observe ? this.observed : this.sent;
  }

  send(event: MaintenanceEvent): void {
    const id = event.id;
    if (this.#observe) {
      if (this.observed.has(id)) return;
      this.observed.add(id);
      this.#logger.info(
        { eventId: id, mode: 'observe' },
        'freezeguard: observe: would approve the event now (StartRequests not sent)',
      );
      return;
    }
    if (this.sent.has(id)) return;
    this.sent.add(id);
    this.#source.approve(id).then(
      () => {
        this.#logger.info({ eventId: id }, 'freezeguard: event approved (StartRequests sent)');
        this.#on.approved(event);
      },
      (err: unknown) => {
        const error = new FreezeguardError(
          'ERR_APPROVAL_FAILED',
          `approving event ${id} failed: ${toError(err).message}`,
          { cause: err, details: { eventId: id } },
        );
        this.#logger.error({ eventId: id, err: error }, 'freezeguard: approving the event failed');
        this.#on.failed(error);
      },
    );
  }
}
