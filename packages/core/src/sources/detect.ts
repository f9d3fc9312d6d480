import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The clouds freezeguard has a maintenance source for. */
export type CloudName = 'azure' | 'gcp' | 'aws';

/** Every cloud name, in the order `FREEZEGUARD_CLOUD` accepts them. */
export const CLOUD_NAMES: readonly CloudName[] = ['azure', 'gcp', 'aws'];

/** Options of {@link detectCloud}. */
export interface DetectCloudOptions {
  /** Where the firmware's DMI strings are. Default `/sys/class/dmi/id` (tests point it elsewhere). */
  readonly dmiDir?: string;
}

/** The DMI files read, all world-readable (product_uuid and serials are not, so unused). */
export const DMI_FIELDS = [
  'sys_vendor',
  'product_name',
  'product_version',
  'bios_vendor',
  'bios_version',
  'board_vendor',
  'board_asset_tag',
  'chassis_vendor',
  'chassis_asset_tag',
] as const;

/** The DMI strings {@link classifyDmi} looks at; missing files are absent. */
export type DmiFields = Partial<Record<(typeof DMI_FIELDS)[number], string>>;

// Every Azure VM carries this chassis asset tag; plain Hyper-V elsewhere does not.
const AZURE_ASSET_TAG = '7783-7084-3265-9085-8269-3286-77';

/**
 * Names the cloud from DMI strings, or null when none matches. Azure: its fixed chassis
 * asset tag. GCE: `Google` as system or BIOS vendor, or product `Google Compute Engine`.
 * EC2: `Amazon EC2` as system or BIOS vendor (Nitro), or an `amazon` BIOS version (Xen).
 *
 * @example
 * ```ts
 * classifyDmi({ sys_vendor: 'Google', product_name: 'Google Compute Engine' }); // 'gcp'
 * ```
 */
export function classifyDmi(fields: DmiFields): CloudName | null {
  const f = (k: keyof DmiFields) => (fields[k] ?? '').trim();
  if (f('chassis_asset_tag') === AZURE_ASSET_TAG) return 'azure';
  if (
    f('product_name') === 'Google Compute Engine' ||
    f('sys_vendor') === 'Google' ||
    f('bios_vendor') === 'Google'
  )
    return 'gcp';
  if (
    /^Amazon EC2$/i.test(f('sys_vendor')) ||
    /^Amazon EC2$/i.test(f('bios_vendor')) ||
    /amazon/i.test(f('bios_version')) ||
    /amazon/i.test(f('product_version'))
  )
    return 'aws';
  return null;
}

/**
 * Which cloud this machine runs on, from the firmware's DMI strings in
 * `/sys/class/dmi/id` (no network, nothing to wait for): `'azure'`, `'gcp'`, `'aws'`, or
 * null (not a cloud VM, not Linux, or the strings are unreadable).
 *
 * @example
 * ```ts
 * const cloud = await detectCloud(); // 'gcp' on a Compute Engine VM
 * ```
 */
export async function detectCloud(options: DetectCloudOptions = {}): Promise<CloudName | null> {
  const dir = options.dmiDir ?? '/sys/class/dmi/id';
  const values = await Promise.all(
    DMI_FIELDS.map((k) => readFile(join(dir, k), 'utf8').catch(() => undefined)),
  );
  return classifyDmi(fieldsFrom(values));
}

/**
 * {@link detectCloud}, synchronously: for `createGuard()`, which must pick its source
 * before it returns. The reads are a handful of tiny sysfs files.
 *
 * @example
 * ```ts
 * detectCloudSync(); // 'aws' on EC2
 * ```
 */
export function detectCloudSync(options: DetectCloudOptions = {}): CloudName | null {
  const dir = options.dmiDir ?? '/sys/class/dmi/id';
  const values = DMI_FIELDS.map((k) => {
    try {
      return readFileSync(join(dir, k), 'utf8');
    } catch {
      return undefined;
    }
  });
  return classifyDmi(fieldsFrom(values));
}

function fieldsFrom(values: readonly (string | undefined)[]): DmiFields {
  const fields: DmiFields = {};
  DMI_FIELDS.forEach((k, i) => {
    const v = values[i];
    if (v !== undefined) fields[k] = v;
  });
  return fields;
}
