// What the VM drill needs beyond apt packages on PATH: a Linux kernel and qemu-guest-agent
// for the guest. They are fetched with `apt-get download` of their exact names (never a
// wildcard: it pulls every version) and unpacked with `dpkg-deb -x` into a gitignored
// cache; nothing is installed on the host. Run by scripts/prerequisites.mjs; importable so
// the test can name the files.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const cacheDir = fileURLToPath(new URL('./.cache/', import.meta.url));
const manifestPath = join(cacheDir, 'assets.json');

/** The host programs the VM drill runs, and the Debian packages that provide them. */
export const vmHostPrograms = [
  { bin: 'qemu-system-x86_64', pkg: 'qemu-system-x86', why: 'the VM drill (test/vm)' },
  { bin: 'busybox', pkg: 'busybox-static', why: 'the VM drill guest' },
  { bin: 'cpio', pkg: 'cpio', why: 'the VM drill initramfs' },
];

/** Paths of the unpacked guest assets, or null when they are not there yet. */
export function vmAssets() {
  if (!existsSync(manifestPath)) return null;
  const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
  for (const p of [m.kernel, m.modules, m.qemuGa]) if (!existsSync(p)) return null;
  return m;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.status ?? r.error?.message}): ${(r.stderr || r.stdout || '').trim().slice(-800)}`,
    );
  }
  return r.stdout;
}

function kernelPackage() {
  const out = run('apt-cache', ['depends', 'linux-image-cloud-amd64']);
  const m = out.match(/Depends:\s*(linux-image-[0-9][^\s]*-cloud-amd64)/);
  if (!m) throw new Error(`cannot find the kernel package in: ${out}`);
  return m[1];
}

/**
 * Makes sure the guest kernel, its modules and qemu-ga are unpacked in the cache. Returns
 * null on success, else a message saying what failed and what to run.
 */
export function ensureVmAssets({ log = console.log } = {}) {
  if (vmAssets()) return null;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const manual =
    'apt-get update && cd test/vm/.cache && apt-get download linux-image-<version>-cloud-amd64 qemu-guest-agent ' +
    '(exact names: `apt-cache depends linux-image-cloud-amd64`) and `dpkg-deb -x` each into test/vm/.cache/root';
  try {
    mkdirSync(join(cacheDir, 'debs'), { recursive: true });
    let kernel;
    try {
      kernel = kernelPackage();
    } catch {
      // A fresh machine may have no package lists yet.
      if (!isRoot) throw new Error('apt package lists are missing and we are not root');
      log('prerequisites: apt-get update (package lists for the VM guest kernel)');
      run('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'pipe'] });
      kernel = kernelPackage();
    }
    const debsDir = join(cacheDir, 'debs');
    const want = [kernel, 'qemu-guest-agent'];
    for (const name of want) {
      if (readdirSync(debsDir).some((f) => f.startsWith(`${name}_`))) continue;
      log(`prerequisites: apt-get download ${name} (VM drill guest; unpacked, not installed)`);
      // _apt cannot write into a root-owned cache: download as the current user.
      run('apt-get', ['download', '-o', 'APT::Sandbox::User=root', name], { cwd: debsDir });
    }
    const root = join(cacheDir, 'root');
    mkdirSync(root, { recursive: true });
    for (const name of want) {
      const deb = readdirSync(debsDir).find((f) => f.startsWith(`${name}_`));
      run('dpkg-deb', ['-x', join(debsDir, deb), root]);
    }
    const version = kernel.replace(/^linux-image-/, '');
    const manifest = {
      kernelPackage: kernel,
      kernel: join(root, 'boot', `vmlinuz-${version}`),
      modules: join(root, 'lib', 'modules', version),
      qemuGa: join(root, 'usr', 'sbin', 'qemu-ga'),
    };
    for (const p of [manifest.kernel, manifest.modules, manifest.qemuGa]) {
      if (!existsSync(p)) throw new Error(`unpacked packages lack ${p}`);
    }
    writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    return null;
  } catch (err) {
    return `the VM drill's guest kernel and qemu-guest-agent could not be prepared: ${err.message}\nDo it by hand: ${manual}`;
  }
}
