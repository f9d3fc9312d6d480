import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { azureScheduledEvents, chooseCloud, detectCloud } from '../src/index.js';
import { sourceFor } from '../src/sources/default.js';
import { classifyDmi, detectCloudSync } from '../src/sources/detect.js';
import { backoffDelay } from '../src/sources/poll-loop.js';

const dirs: Record<string, string> = {};
const FIRMWARE: Record<string, Record<string, string>> = {
  azure: {
    sys_vendor: 'Microsoft Corporation\n',
    product_name: 'Virtual Machine\n',
    chassis_asset_tag: '7783-7084-3265-9085-8269-3286-77\n',
  },
  hyperv: { sys_vendor: 'Microsoft Corporation\n', product_name: 'Virtual Machine\n' },
  gcp: { sys_vendor: 'Google\n', product_name: 'Google Compute Engine\n', bios_vendor: 'Google\n' },
  'aws-nitro': {
    sys_vendor: 'Amazon EC2\n',
    product_name: 'm5.large\n',
    bios_vendor: 'Amazon EC2\n',
  },
  'aws-xen': { sys_vendor: 'Xen\n', product_name: 'HVM domU\n', bios_version: '4.11.amazon\n' },
  qemu: { sys_vendor: 'QEMU\n', product_name: 'Standard PC (Q35 + ICH9, 2009)\n' },
  empty: {},
};

beforeAll(async () => {
  for (const [name, files] of Object.entries(FIRMWARE)) {
    const dir = await mkdtemp(join(tmpdir(), `fg-dmi-${name}-`));
    for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text);
    dirs[name] = dir;
  }
});
afterAll(async () => {
  for (const dir of Object.values(dirs)) await rm(dir, { recursive: true, force: true });
});

describe('detectCloud', () => {
  it.each([
    ['azure', 'azure'],
    ['hyperv', null],
    ['gcp', 'gcp'],
    ['aws-nitro', 'aws'],
    ['aws-xen', 'aws'],
    ['qemu', null],
    ['empty', null],
  ])('%s firmware → %s, async and sync alike', async (name, cloud) => {
    expect(await detectCloud({ dmiDir: dirs[name] })).toBe(cloud);
    expect(detectCloudSync({ dmiDir: dirs[name] })).toBe(cloud);
  });

  it('a missing directory is no cloud, not an error', async () => {
    expect(await detectCloud({ dmiDir: '/nonexistent/dmi' })).toBeNull();
  });

  it('never throws and names at most one cloud, whatever the strings', () => {
    fc.assert(
      fc.property(
        fc.record({
          sys_vendor: fc.string(),
          product_name: fc.string(),
          bios_vendor: fc.string(),
          bios_version: fc.string(),
          chassis_asset_tag: fc.string(),
        }),
        (fields) => {
          const cloud = classifyDmi(fields);
          expect([null, 'azure', 'gcp', 'aws']).toContain(cloud);
        },
      ),
      { seed: 14, numRuns: 300 },
    );
  });
});

describe('the default source', () => {
  it('FREEZEGUARD_CLOUD wins, then the firmware, then Azure', () => {
    expect(chooseCloud({ FREEZEGUARD_CLOUD: 'gcp' }, { dmiDir: dirs['aws-nitro'] })).toBe('gcp');
    expect(chooseCloud({ FREEZEGUARD_CLOUD: ' AWS ' }, { dmiDir: dirs.empty })).toBe('aws');
    expect(chooseCloud({}, { dmiDir: dirs.gcp })).toBe('gcp');
    expect(chooseCloud({}, { dmiDir: dirs['aws-xen'] })).toBe('aws');
    expect(chooseCloud({}, { dmiDir: dirs.qemu })).toBe('azure');
    expect(() => chooseCloud({ FREEZEGUARD_CLOUD: 'oracle' })).toThrow(/FREEZEGUARD_CLOUD/);
  });

  it('FREEZEGUARD_IMDS_ENDPOINT applies to whichever cloud is chosen', () => {
    const saved = process.env.FREEZEGUARD_IMDS_ENDPOINT;
    process.env.FREEZEGUARD_IMDS_ENDPOINT = 'http://127.0.0.1:4567';
    try {
      const kinds = (['azure', 'gcp', 'aws'] as const).map((c) => sourceFor(c));
      expect(kinds.map((s) => s.kind)).toEqual(['azure-imds', 'gce-metadata', 'ec2-imds']);
      for (const s of kinds)
        expect((s as unknown as { endpoint: string }).endpoint).toBe('http://127.0.0.1:4567');
      expect(kinds.map((s) => s.supportsApproval)).toEqual([true, false, false]);
    } finally {
      if (saved === undefined) delete process.env.FREEZEGUARD_IMDS_ENDPOINT;
      else process.env.FREEZEGUARD_IMDS_ENDPOINT = saved;
    }
  });
});

describe('metadata backoff', () => {
  it('stays within [interval, max] and grows with the streak', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 200, max: 2000 }),
        fc.integer({ min: 0, max: 20_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (streak, interval, extra, r) => {
          const max = interval + extra;
          const d = backoffDelay(streak, interval, max, () => r);
          expect(d).toBeGreaterThanOrEqual(interval);
          expect(d).toBeLessThanOrEqual(max);
        },
      ),
      { seed: 11, numRuns: 500 },
    );
  });

  it("Azure's default: however a 60 s IMDS outage ends, the next read comes within 5 s (the old 30 s cap could sleep through a Preempt notice)", () => {
    const source = azureScheduledEvents({ endpoint: 'http://127.0.0.1:9' });
    // The longest wait between IMDS coming back and the next read: IMDS comes back just
    // after a failed read, so the wait is the next backoff step (request time ~100 ms).
    const worstGap = (interval: number, max: number, jitter: number) => {
      let t = 0;
      let streak = 0;
      let worst = 0;
      while (t < 60_000) {
        const step = 100 + backoffDelay(++streak, interval, max, () => jitter);
        worst = Math.max(worst, step);
        t += step;
      }
      return worst;
    };
    for (const jitter of [0, 0.5, 0.999])
      expect(worstGap(source.pollIntervalMs, source.maxBackoffMs, jitter)).toBeLessThanOrEqual(
        5_100,
      );
    // The old default fails the same check.
    expect(worstGap(1000, 30_000, 0.999)).toBeGreaterThan(20_000);
  });
});
