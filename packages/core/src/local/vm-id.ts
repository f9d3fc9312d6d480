import * as fs from 'node:fs';
import { errorSummary } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MaintenanceSource } from '../sources/source.js';
import { type Clock, sleep, type Timers } from '../time/clock.js';
import { readCachedVmId, tryLock, vmIdCachePath, writeCachedVmId } from './paths.js';

/** A lock older than this is taken over: longer than IMDS's slowest first answer (2 min). */
const LOCK_STALE_MS = 150_000;
/** After this many failed reads the process stops waiting and acts alone. */
const MAX_FAILURES = 3;

/**
 * This VM's id, asked of the platform by ONE process per boot and read from a cache by the
 * others: eight processes starting together would otherwise send eight requests at once
 * and meet IMDS's limit of about 5 per second. Resolves undefined when the source cannot
 * tell (no `resolveVmId`, an empty answer, or {@link MAX_FAILURES} failures): the caller
 * then acts alone. Never rejects.
 *
 * @example
 * ```ts
 * const vmId = await resolveVmIdOnce(source, '/run/freezeguard-0', { clock, timers, logger, running: () => true });
 * ```
 */
export async function resolveVmIdOnce(
  source: MaintenanceSource,
  base: string,
  env: {
    readonly clock: Clock;
    readonly timers: Timers;
    readonly logger: Logger;
    running(): boolean;
  },
): Promise<string | undefined> {
  if (!source.resolveVmId) return undefined;
  const origin = `${source.kind}|${String((source as { endpoint?: unknown }).endpoint ?? '')}`;
  let cache: string;
  try {
    cache = vmIdCachePath(base, origin);
  } catch {
    return askDirectly(source);
  }
  const lock = `${cache}.lock`;
  let failures = 0;
  while (env.running()) {
    const cached = readCachedVmId(cache);
    if (cached) return cached;
    let locked = false;
    try {
      locked = tryLock(lock, Date.now(), LOCK_STALE_MS);
    } catch {
      return askDirectly(source);
    }
    if (!locked) {
      await sleep(env.timers, 50);
      continue;
    }
    try {
      const id = (await source.resolveVmId())?.trim();
      if (!id) return undefined;
      writeCachedVmId(cache, id);
      return id;
    } catch (err) {
      failures++;
      env.logger.warn(
        { err: errorSummary(err), failures },
        'freezeguard local: cannot read this VM id; retrying',
      );
      if (failures >= MAX_FAILURES) return undefined;
      await sleep(env.timers, 1000 * 2 ** failures);
    } finally {
      fs.rmSync(lock, { force: true });
    }
  }
  return undefined;
}

async function askDirectly(source: MaintenanceSource): Promise<string | undefined> {
  try {
    return (await source.resolveVmId?.())?.trim() || undefined;
  } catch {
    return undefined;
  }
}
