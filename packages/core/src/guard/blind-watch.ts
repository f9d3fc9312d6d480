import { FreezeguardError } from '../errors.js';
import type { Logger } from '../logger.js';
import { blindRemedy, sourceBlindness } from '../sources/blind.js';
import type { MaintenanceSource } from '../sources/source.js';
import type { Clock, TimerHandle, Timers } from '../time/clock.js';

/** Blindness as `status()` shows it. */
export interface BlindStatus {
  /** False for a source that reads nothing on purpose (no cloud detected). */
  readonly watching: boolean;
  readonly blind: boolean;
  /** The source's endpoint, when it names one. */
  readonly endpoint: string | null;
  /** Wall-clock ms since which no good answer came, while blind. */
  readonly since: number | null;
  readonly cause: string | null;
}

/** What a {@link BlindWatch} needs. */
export interface BlindWatchDeps {
  /** The source the guard reads (wrapped by a fleet, if any): its health. */
  readonly source: MaintenanceSource;
  /** The source as configured: its endpoint, kind and whether it watches at all. */
  readonly configured: MaintenanceSource;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly logger: Logger;
  readonly blindAfterMs: number;
}

/**
 * Looks at the source's health when blindness could begin and after each document: one error line
 * when it turns blind (endpoint, cause, remedy), one info line when it sees again, and
 * `firstAnswer()` for `requireSource`. Never touches readiness: a blind guard must not
 * take the service out of rotation.
 */
export class BlindWatch {
  readonly #d: BlindWatchDeps;
  #startedAt: number | null = null;
  #timer: TimerHandle | null = null;
  #blind = false;
  #waiters: { resolve(): void; reject(err: FreezeguardError): void }[] = [];

  constructor(deps: BlindWatchDeps) {
    this.#d = deps;
  }

  get #watching(): boolean {
    return this.#d.configured.watching !== false;
  }

  get #endpoint(): string | null {
    return this.#d.configured.endpoint ?? this.#d.source.endpoint ?? null;
  }

  start(): void {
    if (this.#startedAt !== null) return;
    this.#startedAt = this.#d.clock.now();
    this.#check();
  }

  stop(): void {
    this.#startedAt = null;
    if (this.#timer !== null) this.#d.timers.clearTimeout(this.#timer);
    this.#timer = null;
    this.#settle(new FreezeguardError('ERR_STOPPED', 'guard stopped before the source answered'));
  }

  status(): BlindStatus {
    const watching = this.#watching;
    const endpoint = this.#endpoint;
    if (!watching || this.#startedAt === null)
      return { watching, blind: false, endpoint, since: null, cause: null };
    const b = this.#judge(this.#startedAt);
    return b.blind
      ? { watching, blind: true, endpoint, since: b.since, cause: b.cause }
      : { watching, blind: false, endpoint, since: null, cause: null };
  }

  /**
   * Resolves at the source's first good answer; rejects with `ERR_SOURCE_BLIND` once it
   * is blind, or at once when it watches nothing (no cloud detected).
   */
  firstAnswer(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#check();
    });
  }

  #judge(startedAt: number) {
    return sourceBlindness({
      health: this.#d.source.health(),
      startedAt,
      now: this.#d.clock.now(),
      blindAfterMs: this.#d.blindAfterMs,
    });
  }

  /** Looks again soon: after a document, once the source has recorded it. */
  seen(): void {
    if (this.#startedAt === null || !this.#watching) return;
    this.#arm(0);
  }

  #arm(delay: number): void {
    if (this.#timer !== null) this.#d.timers.clearTimeout(this.#timer);
    this.#timer = this.#d.timers.setTimeout(() => {
      this.#timer = null;
      this.#check();
    }, delay);
  }

  #settle(error: FreezeguardError | null): void {
    for (const w of this.#waiters.splice(0)) {
      if (error) w.reject(error);
      else w.resolve();
    }
  }

  #check(): void {
    const { configured, logger, blindAfterMs } = this.#d;
    const kind = configured.kind;
    if (!this.#watching) {
      this.#settle(
        new FreezeguardError(
          'ERR_SOURCE_BLIND',
          `requireSource: the maintenance source (${kind}) reads nothing: no cloud detected; set FREEZEGUARD_CLOUD or FREEZEGUARD_IMDS_ENDPOINT, or pass a source`,
          { details: { kind } },
        ),
      );
      return;
    }
    if (this.#startedAt === null) return;
    const health = this.#d.source.health();
    if (health.lastSuccessAt !== null) this.#settle(null);
    const b = this.#judge(this.#startedAt);
    const endpoint = this.#endpoint ?? kind;
    const remedy = blindRemedy(kind);
    if (b.blind && !this.#blind) {
      this.#blind = true;
      const forS = Math.round((this.#d.clock.now() - b.since) / 1000);
      logger.error(
        { endpoint, kind, cause: b.cause, since: new Date(b.since).toISOString(), remedy },
        `freezeguard: metadata service unreachable at ${endpoint} for ${forS} s (${b.cause}); the guard is blind to maintenance and the service stays in rotation unprotected. Remedy: ${remedy}`,
      );
    }
    if (b.blind) {
      this.#settle(
        new FreezeguardError(
          'ERR_SOURCE_BLIND',
          `requireSource: the maintenance source (${kind}) at ${endpoint} gave no good answer within ${blindAfterMs} ms (${b.cause}). Remedy: ${remedy}`,
          { details: { kind, endpoint, cause: b.cause, blindAfterMs } },
        ),
      );
    } else if (!b.blind && this.#blind) {
      this.#blind = false;
      logger.info(
        { endpoint, kind },
        `freezeguard: metadata service at ${endpoint} answers again; the guard sees maintenance again`,
      );
    }
    // Blind: only a document ends it (seen()). Otherwise look again when it could begin;
    // a read still waiting after a good answer is looked at again a full period later.
    if (b.blind) {
      if (this.#timer !== null) this.#d.timers.clearTimeout(this.#timer);
      this.#timer = null;
    } else {
      const due = b.since + blindAfterMs - this.#d.clock.now();
      this.#arm(due > 0 ? due : blindAfterMs);
    }
  }
}
