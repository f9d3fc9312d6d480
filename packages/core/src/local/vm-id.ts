import * as fs from 'node:fs';
import { errorSummary } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MaintenanceSource } from '../sources/source.js';
import { type Clock, sleep, type Timers } from '../time/clock.js';
import {
  ensurePrivateDir,
  pickRuntimeDir,
  readCachedVmId,
  runtimeCandidates,
  tryLock,
  vmDir,
  vmIdCachePath,
  writeCachedVmId,
} from './paths.js';

/** A lock older than this is taken over: longer than IMDS's slowest first answer (2 min). */
const LOCK_STALE_MS = 150_000;
/** After this many failed reads the process stops waiting and acts alone. */
const MAX_FAILURES = 3;

/** What reading the VM id needs: its clock and timers (retries), a logger, and whether to go on. */
export interface VmIdentityEnv {
  readonly clock: Clock;
  readonly timers: Timers;
  readonly logger: Logger;
  /** False once the caller stopped: no more retries. */
  running(): boolean;
}

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
  env: VmIdentityEnv,
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
      // Not a warning: if it keeps failing, the one warning is the solo fallback's.
      env.logger.info(
        { err: errorSummary(err), failures },
        'freezeguard: cannot read this VM id; retrying',
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

/** The runtime directory: `directory`, `FREEZEGUARD_LOCAL_DIR`, or the first usable default. Throws why not. */
function runtimeBase(directory: string | undefined): string {
  const configured = directory ?? process.env.FREEZEGUARD_LOCAL_DIR;
  if (configured) ensurePrivateDir(configured);
  return configured || pickRuntimeDir(runtimeCandidates(process.getuid?.() ?? 0));
}

/**
 * This VM's unique id (Azure `compute/vmId`, GCE instance id, EC2 instance-id) through
 * `source`, asked of the platform by one process per VM and boot and read from a cache in
 * the runtime directory by the others, so many processes starting together send one
 * request. For coordinators that key what is "per VM" by it: names are not unique (Azure
 * names per resource group, GCE per zone). Resolves undefined when the source cannot tell
 * (no `resolveVmId`, an empty answer, repeated failures); never rejects.
 *
 * @example
 * ```ts
 * import { vmIdentity } from '@freezeguard/core/adapter';
 * const id = await vmIdentity(source, { clock, timers, logger, running: () => true });
 * ```
 */
export async function vmIdentity(
  source: MaintenanceSource,
  env: VmIdentityEnv,
): Promise<string | undefined> {
  if (!source.resolveVmId) return undefined;
  let base: string;
  try {
    base = runtimeBase(undefined);
  } catch {
    return askDirectly(source);
  }
  return resolveVmIdOnce(source, base, env);
}

/** Where this process meets the others of its VM, or why it cannot. */
export type VmPlace = { readonly vmId: string; readonly dir: string } | { readonly solo: string };

/**
 * Finds this VM's folder: the runtime directory (`directory`, `FREEZEGUARD_LOCAL_DIR`, or
 * the first usable default), the VM id, and the folder named after it. Never rejects: a
 * reason to act alone instead.
 *
 * @example
 * ```ts
 * const place = await locateVm(source, {}, { clock, timers, logger, running: () => true });
 * if ('solo' in place) logger.warn({ reason: place.solo }, 'acting alone');
 * ```
 */
export async function locateVm(
  source: MaintenanceSource,
  options: {
    readonly directory?: string;
    readonly resolveVmId?: (source: MaintenanceSource) => Promise<string | undefined>;
  },
  env: VmIdentityEnv,
): Promise<VmPlace> {
  if (process.platform === 'win32') return { solo: 'no Unix sockets on Windows' };
  let base: string;
  try {
    base = runtimeBase(options.directory);
  } catch (err) {
    return { solo: (err as Error).message };
  }
  const vmId = options.resolveVmId
    ? await options.resolveVmId(source).catch(() => undefined)
    : await resolveVmIdOnce(source, base, env);
  if (!vmId) return { solo: 'this VM id is unknown (the source cannot tell it)' };
  try {
    return { vmId, dir: vmDir(base, vmId) };
  } catch (err) {
    return { solo: (err as Error).message };
  }
}
