import type { ScheduledEvent } from '../document.js';
import { FreezeguardError, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MaintenanceSource } from '../sources/source.js';

/**
 * Approvals sent to the platform: each EventId once (a retry after a lost answer could
 * approve twice, and the event starts at NotBefore anyway), a failure reported as
 * `ERR_APPROVAL_FAILED`.
 *
 * @example
 * ```ts
 * const approvals = new Approvals(source, logger, { approved: () => evaluate(), failed: (e) => emit('error', e) });
 * approvals.send(event);
 * ```
 */
export class Approvals {
  /** EventIds approved or being approved. */
  readonly sent = new Set<string>();
  readonly #source: MaintenanceSource;
  readonly #logger: Logger;
  readonly #on: {
    approved(event: ScheduledEvent): void;
    failed(error: FreezeguardError): void;
  };

  constructor(
    source: MaintenanceSource,
    logger: Logger,
    on: { approved(event: ScheduledEvent): void; failed(error: FreezeguardError): void },
  ) {
    this.#source = source;
    this.#logger = logger;
    this.#on = on;
  }

  send(event: ScheduledEvent): void {
    const id = event.EventId;
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
