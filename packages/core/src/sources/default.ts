import { azureScheduledEvents } from './azure.js';
import type { MaintenanceSource } from './source.js';

/**
 * The source `createGuard()` uses when given none. Kept apart from the lifecycle so the
 * guard never imports a concrete cloud: only the package entry decides.
 *
 * @example
 * ```ts
 * const guard = createGuard({ source: defaultSource() }); // what createGuard() does
 * ```
 */
export function defaultSource(): MaintenanceSource {
  return azureScheduledEvents();
}
