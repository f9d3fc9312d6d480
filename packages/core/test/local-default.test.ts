import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { approvalPolicy } from '../src/guard/compose.js';
import { envGuardOptions, resolveGuardOptions } from '../src/guard/options.js';
import { createGuard, type Guard, localCoordinator, silentLogger } from '../src/index.js';
import { MemorySource } from '../src/testing.js';

// VM-local coordination is on by default: a guard whose source can tell the VM's unique
// id meets the other guarded processes of the VM without any option.

const dirs: string[] = [];
const guards: Guard[] = [];
const savedDir = process.env.FREEZEGUARD_LOCAL_DIR;
afterEach(async () => {
  for (const g of guards.splice(0)) await g.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  if (savedDir === undefined) delete process.env.FREEZEGUARD_LOCAL_DIR;
  else process.env.FREEZEGUARD_LOCAL_DIR = savedDir;
});

/** A memory source that, like the cloud sources, can tell this VM's unique id. */
function cloudLike(): MemorySource {
  const source = new MemorySource({ resourceName: 'vm-1' });
  return Object.assign(source, { resolveVmId: async () => 'vm-id-1' });
}

async function started(options: Parameters<typeof createGuard>[0]) {
  const dir = mkdtempSync(join(tmpdir(), 'fg-local-default-'));
  dirs.push(dir);
  process.env.FREEZEGUARD_LOCAL_DIR = dir;
  const guard = createGuard({ logger: silentLogger, ...options });
  guards.push(guard);
  await guard.start();
  return guard;
}

describe('VM-local coordination by default', () => {
  it('is used when no fleet is given and the source can tell the VM id', async () => {
    const guard = await started({ source: cloudLike() });
    expect(guard.status().fleet?.kind).toBe('local');
  });

  it('is not used with local: false, FREEZEGUARD_LOCAL=0, a fleet given, or a source without a VM id', async () => {
    expect((await started({ source: cloudLike(), local: false })).status().fleet).toBeNull();
    expect((await started({ source: new MemorySource() })).status().fleet).toBeNull();
    const own = localCoordinator({ heartbeatMs: 100, suspectMs: 500 });
    expect((await started({ source: cloudLike(), fleet: own })).status().fleet?.kind).toBe('local');
    expect(resolveGuardOptions({}, { FREEZEGUARD_LOCAL: '0' }).local).toBe(false);
    expect(resolveGuardOptions({ local: true }, { FREEZEGUARD_LOCAL: '0' }).local).toBe(true);
  });

  it('reads FREEZEGUARD_LOCAL and rejects what is not a flag, naming it', () => {
    expect(envGuardOptions({ FREEZEGUARD_LOCAL: 'false' })).toEqual({ local: false });
    expect(envGuardOptions({ FREEZEGUARD_LOCAL: '1' })).toEqual({ local: true });
    expect(() => envGuardOptions({ FREEZEGUARD_LOCAL: 'maybe' })).toThrow(/FREEZEGUARD_LOCAL/);
    expect(() => resolveGuardOptions({ local: 'yes' as never })).toThrow(/local/);
  });

  it("routes approve: 'solo' through the VM's processes; observers predict as before", () => {
    // A coordinator says what it spans (its kind is only a name).
    const local = { scope: 'vm' as const };
    const redis = { scope: 'fleet' as const };
    expect(localCoordinator().scope).toBe('vm');
    expect(approvalPolicy('solo', false, local)).toBe('fleet');
    expect(approvalPolicy('solo', false, undefined)).toBe('solo');
    expect(approvalPolicy('solo', false, redis)).toBe('solo');
    expect(approvalPolicy('always', false, local)).toBe('always');
    expect(approvalPolicy('never', false, local)).toBe('never');
    expect(approvalPolicy('fleet', false, redis)).toBe('fleet');
    expect(approvalPolicy('solo', true, local)).toBe('solo');
    expect(approvalPolicy('fleet', true, redis)).toBe('never');
  });
});
