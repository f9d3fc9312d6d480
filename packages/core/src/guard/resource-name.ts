import { toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MaintenanceSource } from '../sources/source.js';
import type { TimerHandle, Timers } from '../time/clock.js';

/** What resolving the name needs. */
export interface ResourceNameDeps {
  readonly source: MaintenanceSource;
  readonly timers: Timers;
  readonly logger: Logger;
  /** The name became known. */
  resolved(): void;
}

/**
 * This VM's name in the platform's `Resources`: given, or read from the source with a
 * backoff (the first metadata answer can take minutes). Until it is known the guard acts
 * on no event, and `error` says why.
 *
 * @example
 * ```ts
 * const name = new ResourceName(undefined, { source, timers, logger, resolved: () => evaluate() });
 * name.resolve();
 * ```
 */
export class ResourceName {
  name: string | undefined;
  error: string | null = null;
  #timer: TimerHandle | null = null;
  #stopped = false;
  readonly #deps: ResourceNameDeps;

  constructor(name: string | undefined, deps: ResourceNameDeps) {
    this.name = name;
    this.#deps = deps;
  }

  resolve(attempt = 0): void {
    const { source, timers, logger } = this.#deps;
    // An empty name is a failure like any other: thrown from the success handler it would
    // be an unhandled rejection, and Node ends the process on those.
    const named = source.resolveResourceName().then((name) => {
      if (!name) throw new Error('the source returned an empty resource name');
      return name;
    });
    named.then(
      (name) => {
        if (this.#stopped) return;
        this.name = name;
        this.error = null;
        logger.info({ resourceName: name }, 'freezeguard: resource name resolved');
        this.#deps.resolved();
      },
      (err: unknown) => {
        if (this.#stopped) return;
        this.error = `resource name unknown: ${toError(err).message}`;
        if (attempt === 0) {
          logger.warn(
            { err: toError(err) },
            'freezeguard: cannot read this VM name; acting on no event until it is known',
          );
        }
        const delay = Math.min(30_000, 1000 * 2 ** attempt);
        this.#timer = timers.setTimeout(() => this.resolve(attempt + 1), delay);
      },
    );
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.#deps.timers.clearTimeout(this.#timer);
  }
}
