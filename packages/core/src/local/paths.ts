import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/*
 * Where the processes of one VM meet: a private per-user runtime directory, one folder per
 * VM id inside it, leader sockets named by term, and approval claim files. Everything here
 * is synchronous and small: it runs at start, in elections and once per heartbeat.
 */

/** Unix socket paths longer than this do not fit `sun_path` on every platform. */
const MAX_SOCKET_PATH = 100;

/**
 * The per-user runtime directory candidates, best first: `/run/user/<uid>` (what
 * `$XDG_RUNTIME_DIR` is on systemd hosts, read from the path rather than the environment
 * so a service without the variable and a shell with it agree), `/run` where it is
 * writable (root, containers), else the temporary directory.
 *
 * @example
 * ```ts
 * runtimeCandidates(1000); // ['/run/user/1000/freezeguard', '/run/freezeguard-1000', '/tmp/freezeguard-1000']
 * ```
 */
export function runtimeCandidates(uid: number, tmpdir: string = os.tmpdir()): string[] {
  return [
    `/run/user/${uid}/freezeguard`,
    `/run/freezeguard-${uid}`,
    path.join(tmpdir, `freezeguard-${uid}`),
  ];
}

/**
 * Creates (0700) or checks a private directory: a directory, not a link, owned by this
 * user, closed to everyone else. Throws with the reason otherwise.
 *
 * @example
 * ```ts
 * ensurePrivateDir('/tmp/freezeguard-1000');
 * ```
 */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new Error(`${dir} belongs to uid ${st.uid}`);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
  fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
}

/**
 * The first usable runtime directory of `candidates` (created 0700), or throws naming
 * why each failed.
 *
 * @example
 * ```ts
 * const base = pickRuntimeDir(runtimeCandidates(process.getuid()));
 * ```
 */
export function pickRuntimeDir(candidates: readonly string[]): string {
  const reasons: string[] = [];
  for (const dir of candidates) {
    // /run/user/<uid> is only used when the system made it; /run/freezeguard-<uid> only
    // when /run is writable: never create either parent.
    const parent = path.dirname(dir);
    if (parent.startsWith('/run') && !fs.existsSync(parent)) {
      reasons.push(`${parent} does not exist`);
      continue;
    }
    try {
      ensurePrivateDir(dir);
      return dir;
    } catch (err) {
      reasons.push((err as Error).message);
    }
  }
  throw new Error(`no usable runtime directory: ${reasons.join('; ')}`);
}

/**
 * A VM id as a directory name: kept when it is short and plain (a UUID, an instance id),
 * else a hash of it.
 *
 * @example
 * ```ts
 * vmFolderName('3f9b1c1e-2d4e-4c7a-9d55-0a1b2c3d4e5f'); // unchanged
 * ```
 */
export function vmFolderName(vmId: string): string {
  if (/^[A-Za-z0-9._-]{1,64}$/.test(vmId) && vmId !== '.' && vmId !== '..') return vmId;
  return `h-${hash(vmId, 32)}`;
}

/**
 * The folder of one VM's processes, created 0700; throws when socket paths would not fit.
 *
 * @example
 * ```ts
 * vmDir('/run/freezeguard-0', vmId); // '/run/freezeguard-0/<vmId>'
 * ```
 */
export function vmDir(base: string, vmId: string): string {
  const dir = path.join(base, vmFolderName(vmId));
  ensurePrivateDir(dir);
  if (socketPath(dir, Number.MAX_SAFE_INTEGER).length > MAX_SOCKET_PATH) {
    throw new Error(`${dir} is too long for a Unix socket path`);
  }
  return dir;
}

/**
 * The leader socket of `term`.
 *
 * @example
 * ```ts
 * socketPath(dir, 3); // '<dir>/t3.sock'
 * ```
 */
export function socketPath(dir: string, term: number): string {
  return path.join(dir, `t${term}.sock`);
}

/**
 * Terms of the leader sockets present in `dir`.
 *
 * @example
 * ```ts
 * listTerms(dir); // [3, 4]
 * ```
 */
export function listTerms(dir: string): number[] {
  const terms: number[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = /^t(\d{1,15})\.sock$/.exec(name);
    if (m) terms.push(Number(m[1]));
  }
  return terms;
}

/**
 * The highest term ever taken in `dir` (0 when unknown).
 *
 * @example
 * ```ts
 * readEpoch(dir); // 4
 * ```
 */
export function readEpoch(dir: string): number {
  try {
    const n = Number(fs.readFileSync(path.join(dir, 'epoch'), 'utf8'));
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

/**
 * Records `term` as taken, so terms keep rising once every socket file is gone.
 *
 * @example
 * ```ts
 * writeEpoch(dir, 5);
 * ```
 */
export function writeEpoch(dir: string, term: number): void {
  if (readEpoch(dir) >= term) return;
  const tmp = path.join(dir, `epoch.${process.pid}.tmp`);
  fs.writeFileSync(tmp, String(term), { mode: 0o600 });
  fs.renameSync(tmp, path.join(dir, 'epoch'));
}

/**
 * Takes the approval claim of `eventId` for this VM: true for exactly one caller (an
 * exclusive create), whichever leader granted it. Claims older than an hour are swept by
 * {@link sweepClaims}.
 *
 * @example
 * ```ts
 * if (takeClaim(dir, 'E1')) await source.approve('E1');
 * ```
 */
export function takeClaim(dir: string, eventId: string): boolean {
  try {
    fs.closeSync(fs.openSync(path.join(dir, `approved-${hash(eventId, 24)}`), 'wx', 0o600));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Removes claim files older than `maxAgeMs` (the event is long over).
 *
 * @example
 * ```ts
 * sweepClaims(dir, Date.now(), 3_600_000);
 * ```
 */
export function sweepClaims(dir: string, nowMs: number, maxAgeMs: number): void {
  for (const name of fs.readdirSync(dir)) {
    if (!name.startsWith('approved-')) continue;
    const file = path.join(dir, name);
    try {
      if (nowMs - fs.statSync(file).mtimeMs > maxAgeMs) fs.unlinkSync(file);
    } catch {
      // another process swept it first
    }
  }
}

/**
 * This boot's id (Linux), so a cached VM id never outlives the boot it was read in.
 *
 * @example
 * ```ts
 * bootId(); // 'e4e9a1a1-…'
 * ```
 */
export function bootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return String(Math.round(Date.now() - os.uptime() * 1000) >> 16);
  }
}

/**
 * The cache file of the VM id read from `origin` (source kind + endpoint) in this boot.
 *
 * @example
 * ```ts
 * vmIdCachePath(base, 'azure-imds|http://169.254.169.254');
 * ```
 */
export function vmIdCachePath(base: string, origin: string): string {
  return path.join(base, `vmid-${hash(`${origin}|${bootId()}`, 16)}`);
}

/**
 * Reads a cached VM id, or null.
 *
 * @example
 * ```ts
 * readCachedVmId(file); // '3f9b…' or null
 * ```
 */
export function readCachedVmId(file: string): string | null {
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    return id === '' ? null : id;
  } catch {
    return null;
  }
}

/**
 * Writes a VM id to its cache atomically.
 *
 * @example
 * ```ts
 * writeCachedVmId(file, vmId);
 * ```
 */
export function writeCachedVmId(file: string, vmId: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, vmId, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/**
 * Takes the lock of asking the platform for the VM id (one process asks, the others read
 * the cache: eight processes starting together must not get 429s). A lock left by a dead
 * process or older than `staleMs` is taken over.
 *
 * @example
 * ```ts
 * if (tryLock(`${cache}.lock`, Date.now(), 150_000)) writeCachedVmId(cache, await source.resolveVmId());
 * ```
 */
export function tryLock(file: string, nowMs: number, staleMs: number): boolean {
  try {
    fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  try {
    const st = fs.statSync(file);
    const pid = Number(fs.readFileSync(file, 'utf8'));
    if (nowMs - st.mtimeMs > staleMs || !alive(pid)) fs.unlinkSync(file);
  } catch {
    // gone meanwhile: try again next time
  }
  return false;
}

/**
 * True when `pid` is a running process.
 *
 * @example
 * ```ts
 * alive(process.pid); // true
 * ```
 */
export function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function hash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}
