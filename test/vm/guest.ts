// A small Linux guest under QEMU for the VM drill: an initramfs with busybox, this host's
// node (and the libraries ldd lists), the built packages and the express-api example,
// and qemu-ga. The host drives it through QMP (stop/cont) and the guest agent
// (guest-set-time), as a hypervisor and its time sync would.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, realpathSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@freezeguard/test-utils';
import { logsOf, spawnTracked, stopProcess } from '../helpers/processes.js';
// @ts-expect-error plain .mjs shared with scripts/prerequisites.mjs
import { vmAssets } from './prerequisites.mjs';

const repo = fileURLToPath(new URL('../../', import.meta.url));

/** Guest ports of the two apps; the host reaches them through user-mode `hostfwd`. */
export const GUEST_PORTS = { guarded: 8081, unguarded: 8082 } as const;

// Dependencies first (each module's `depends=`): the cloud kernel builds virtio as modules.
const MODULES = [
  'kernel/drivers/virtio/virtio_ring.ko',
  'kernel/drivers/virtio/virtio.ko',
  'kernel/drivers/virtio/virtio_pci_modern_dev.ko',
  'kernel/drivers/virtio/virtio_pci_legacy_dev.ko',
  'kernel/drivers/virtio/virtio_pci.ko',
  'kernel/net/core/failover.ko',
  'kernel/drivers/net/net_failover.ko',
  'kernel/drivers/net/virtio_net.ko',
  'kernel/drivers/char/virtio_console.ko',
];

interface Assets {
  kernel: string;
  modules: string;
  qemuGa: string;
}

function need(ok: boolean, what: string): asserts ok {
  if (!ok) {
    throw new Error(
      `VM drill prerequisite missing: ${what}. Run \`node scripts/prerequisites.mjs\` as root (it installs qemu-system-x86, busybox-static, cpio and unpacks the guest kernel and qemu-guest-agent).`,
    );
  }
}

function onPath(bin: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The shared libraries a dynamic binary loads, by `ldd` (empty for a static one). */
function libraries(binary: string): string[] {
  const r = spawnSync('ldd', [binary], { encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`;
  if (/not a dynamic executable/.test(out)) return [];
  const missing = out.split('\n').filter((l) => l.includes('not found'));
  need(missing.length === 0, `libraries of ${binary}: ${missing.join('; ')}`);
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = line.match(/=>\s*(\/\S+)/) ?? line.match(/^\s*(\/\S+)\s+\(/);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

/** The packages `server.js` of express-api loads at run time, found as Node would resolve them. */
function runtimePackages(): string[] {
  const roots = new Set<string>();
  const seen = new Set<string>();
  // Every runtime dependency the example declares (fleet and metrics are imported even
  // when not turned on); the simulator is only its drill script's.
  const example = join(repo, 'examples/express-api');
  const declared = JSON.parse(readFileSync(join(example, 'package.json'), 'utf8')).dependencies;
  const queue: { name: string; from: string }[] = Object.keys(declared)
    .filter((name) => name !== '@freezeguard/simulator')
    .map((name) => ({ name, from: example }));
  while (queue.length) {
    const { name, from } = queue.shift()!;
    let dir = from;
    let found: string | null = null;
    for (;;) {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) {
        found = candidate;
        break;
      }
      if (dir === repo || dir === dirname(dir)) break;
      dir = dirname(dir);
    }
    need(found !== null, `node module ${name} (run npm ci)`);
    const real = realpathSync(found);
    if (seen.has(real)) continue;
    seen.add(real);
    // Top-level ones are copied; nested ones travel inside their parent's folder.
    if (found === join(repo, 'node_modules', name)) roots.add(name);
    const pkg = JSON.parse(readFileSync(join(real, 'package.json'), 'utf8'));
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
      queue.push({ name: dep, from: found });
    }
  }
  return [...roots];
}

const INIT = `#!/bin/sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin /var/run /run
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /etc/modules.list); do insmod /lib/modules/$m || echo "insmod $m failed"; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
for opt in $(cat /proc/cmdline); do case $opt in fg.*=*) k=\${opt%%=*}; export \${k#fg.}="\${opt#*=}";; esac; done
AGENT=
for d in /sys/class/virtio-ports/*; do [ "$(cat $d/name 2>/dev/null)" = org.qemu.guest_agent.0 ] && AGENT=/dev/$(basename $d); done
echo "fg: agent port \${AGENT:-missing}, clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
[ -n "$AGENT" ] && /usr/sbin/qemu-ga -m virtio-serial -p $AGENT -t /tmp -f /tmp/qga.pid &
cd /app
export HOME=/tmp FREEZEGUARD_IMDS_ENDPOINT=http://10.0.2.2:$IMDS_PORT FREEZEGUARD_RESOURCE_NAME=$RESOURCE FREEZEGUARD_DRAIN_DELAY_MS=$DRAIN_MS FREEZEGUARD_LB=$LB
PORT=${GUEST_PORTS.guarded} node --import /app/listen-any.mjs examples/express-api/src/server.js > /dev/ttyS1 2>&1 &
PORT=${GUEST_PORTS.unguarded} FREEZEGUARD_DISABLED=1 node --import /app/listen-any.mjs examples/express-api/src/server.js > /dev/ttyS2 2>&1 &
echo "fg: apps started"
while true; do sleep 3600; done
`;

// The example binds 127.0.0.1 (right on a host); in the guest the forwarded port arrives
// on eth0, so the guest's apps listen on every address.
const LISTEN_ANY = `import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[1] === '127.0.0.1') args[1] = '0.0.0.0';
  return listen.apply(this, args);
};
`;

/** Builds the guest's initramfs (uncompressed cpio) in `dir`; returns its path. */
export async function buildInitramfs(dir: string): Promise<string> {
  const assets = vmAssets() as Assets | null;
  need(assets !== null, 'the guest kernel and qemu-ga (test/vm/.cache)');
  const busybox = onPath('busybox');
  need(busybox !== null, 'busybox (apt-get install busybox-static)');
  need(onPath('cpio') !== null, 'cpio (apt-get install cpio)');
  const root = join(dir, 'root');
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'usr/sbin'), { recursive: true });
  cpSync(realpathSync(busybox), join(root, 'bin/busybox'));
  await symlink('busybox', join(root, 'bin/sh'));
  cpSync(realpathSync(process.execPath), join(root, 'bin/node'));
  cpSync(assets.qemuGa, join(root, 'usr/sbin/qemu-ga'));
  for (const bin of [process.execPath, assets.qemuGa, busybox]) {
    for (const lib of libraries(bin)) {
      const target = join(root, lib);
      await mkdir(dirname(target), { recursive: true });
      if (!existsSync(target)) cpSync(realpathSync(lib), target);
    }
  }
  for (const m of MODULES) {
    const src = join(assets.modules, m);
    need(existsSync(src), `kernel module ${m}`);
    const target = join(root, 'lib/modules', m);
    await mkdir(dirname(target), { recursive: true });
    cpSync(src, target);
  }
  await writeFile(join(root, 'etc/modules.list'), `${MODULES.join('\n')}\n`);
  // The app: the example, the built workspace packages and their runtime dependencies.
  const app = join(root, 'app');
  cpSync(join(repo, 'examples/express-api/src'), join(app, 'examples/express-api/src'), {
    recursive: true,
  });
  cpSync(
    join(repo, 'examples/express-api/package.json'),
    join(app, 'examples/express-api/package.json'),
  );
  await writeFile(join(app, 'package.json'), '{"type":"module","private":true}\n');
  for (const name of runtimePackages()) {
    const src = realpathSync(join(repo, 'node_modules', name));
    const dest = join(app, 'node_modules', name);
    if (src.startsWith(join(repo, 'packages'))) {
      need(existsSync(join(src, 'dist')), `${name} built (npm run build)`);
      cpSync(join(src, 'package.json'), join(dest, 'package.json'));
      cpSync(join(src, 'dist'), join(dest, 'dist'), { recursive: true });
    } else {
      cpSync(src, dest, { recursive: true, dereference: true });
    }
  }
  await writeFile(join(app, 'listen-any.mjs'), LISTEN_ANY);
  await writeFile(join(root, 'init'), INIT);
  await chmod(join(root, 'init'), 0o755);
  const out = join(dir, 'initramfs.cpio');
  const r = spawnSync('sh', ['-c', `cd "${root}" && find . | cpio -o -H newc --quiet > "${out}"`], {
    encoding: 'utf8',
  });
  need(r.status === 0, `cpio archive: ${r.stderr}`);
  return out;
}

/** Speaks QMP (or the guest agent's protocol, the same JSON lines) over a unix socket. */
export class JsonChannel {
  readonly #socket: Socket;
  #buffer = '';
  #waiters: ((msg: Record<string, unknown>, line: string) => boolean)[] = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      for (;;) {
        const i = this.#buffer.indexOf('\n');
        if (i < 0) break;
        const line = this.#buffer.slice(0, i).trim();
        this.#buffer = this.#buffer.slice(i + 1);
        if (!line) continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        this.#waiters = this.#waiters.filter((w) => !w(msg, line));
      }
    });
  }

  static async open(path: string, timeoutMs = 10_000): Promise<JsonChannel> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        return new JsonChannel(socket);
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`cannot connect to ${path}: ${err}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Sends raw JSON text (so a BigInt can be written exactly) and waits for `return`/`error`. */
  async execute(json: string, timeoutMs = 5000): Promise<unknown> {
    const answer = this.next((m) => 'return' in m || 'error' in m, timeoutMs);
    this.#socket.write(`${json}\n`);
    const msg = await answer;
    if ('error' in msg) throw new Error(`${json} → ${JSON.stringify(msg.error)}`);
    return msg.return;
  }

  /** Like `execute`, but resolves with the answer's raw JSON text. */
  async executeRaw(json: string, timeoutMs = 5000): Promise<string> {
    let raw = '';
    const answer = this.next((m, line) => {
      raw = line;
      return 'return' in m || 'error' in m;
    }, timeoutMs);
    this.#socket.write(`${json}\n`);
    await answer;
    return raw;
  }

  next(match: (m: Record<string, unknown>, line: string) => boolean, timeoutMs: number) {
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (m: Record<string, unknown>, line: string) => {
        if (!match(m, line)) return false;
        clearTimeout(timer);
        resolve(m);
        return true;
      };
      this.#waiters.push(waiter);
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** A running guest. */
export interface Vm {
  /** Host ports forwarded to the guest's apps. */
  readonly ports: { readonly guarded: number; readonly unguarded: number };
  readonly accel: 'kvm' | 'tcg';
  /** QMP `stop`: the hypervisor stops every vCPU. */
  stop(): Promise<void>;
  /** QMP `cont`. */
  cont(): Promise<void>;
  /** qemu-ga `guest-set-time` to the host's time now, in exact ns (a time sync's step). */
  syncClock(): Promise<void>;
  /** qemu-ga `guest-get-time`: the guest's wall clock, ns. */
  guestTimeNs(): Promise<bigint>;
  /** The guarded app's output (second serial port) so far. */
  appLog(): Promise<string>;
  /** The console (first serial port) so far. */
  consoleLog(): Promise<string>;
  close(): Promise<void>;
}

function kvmUsable(): boolean {
  try {
    const cpu = readFileSync('/proc/cpuinfo', 'utf8');
    if (!/\b(vmx|svm)\b/.test(cpu)) return false;
    const r = spawnSync('sh', ['-c', 'test -r /dev/kvm && test -w /dev/kvm']);
    return r.status === 0;
  } catch {
    return false;
  }
}

/** Boots the guest; resolves once qemu runs (the apps take a while longer to answer). */
export async function bootVm(options: {
  readonly imdsPort: number;
  readonly resourceName: string;
  readonly drainDelayMs: number;
  /** The balancer in front of the guest as `FREEZEGUARD_LB` (`<intervalMs>x<failures>`). */
  readonly lb: string;
}): Promise<Vm> {
  const qemu = onPath('qemu-system-x86_64');
  need(qemu !== null, 'qemu-system-x86_64 (apt-get install qemu-system-x86)');
  const bios = '/usr/share/qemu/qboot.rom';
  need(existsSync(bios), `${bios} (apt-get install qemu-system-x86)`);
  const dir = await mkdtemp(join(tmpdir(), 'fg-vm-'));
  const initrd = await buildInitramfs(dir);
  const assets = vmAssets() as Assets;
  const ports = { guarded: await freePort(), unguarded: await freePort() };
  const qmpPath = join(dir, 'qmp.sock');
  const qgaPath = join(dir, 'qga.sock');
  const consolePath = join(dir, 'console.log');
  const appPath = join(dir, 'app.log');
  const accel = kvmUsable() ? 'kvm' : 'tcg';
  const append = [
    'console=ttyS0',
    'tsc=reliable',
    'quiet',
    'rdinit=/init',
    'panic=-1',
    `fg.IMDS_PORT=${options.imdsPort}`,
    `fg.RESOURCE=${options.resourceName}`,
    `fg.DRAIN_MS=${options.drainDelayMs}`,
    `fg.LB=${options.lb}`,
  ].join(' ');
  const args = [
    '-machine',
    `pc,accel=${accel}`,
    '-cpu',
    accel === 'kvm' ? 'host' : 'max',
    '-smp',
    '1',
    '-m',
    '1024',
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-bios',
    bios,
    '-kernel',
    assets.kernel,
    '-initrd',
    initrd,
    '-append',
    append,
    '-rtc',
    'base=utc',
    '-netdev',
    `user,id=n0,hostfwd=tcp:127.0.0.1:${ports.guarded}-:${GUEST_PORTS.guarded},hostfwd=tcp:127.0.0.1:${ports.unguarded}-:${GUEST_PORTS.unguarded}`,
    '-device',
    'virtio-net-pci,netdev=n0',
    '-qmp',
    `unix:${qmpPath},server=on,wait=off`,
    '-chardev',
    `socket,id=qga0,path=${qgaPath},server=on,wait=off`,
    '-device',
    'virtio-serial-pci',
    '-device',
    'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
    '-serial',
    `file:${consolePath}`,
    '-serial',
    `file:${appPath}`,
    '-serial',
    `file:${join(dir, 'unguarded.log')}`,
  ];
  const proc = spawnTracked(qemu, args, {}, 'qemu');
  const exited = new Promise<never>((_, reject) =>
    proc.once('exit', (code) =>
      reject(new Error(`qemu exited (${code}): ${logsOf(proc).slice(-10).join('\n')}`)),
    ),
  );
  exited.catch(() => {});
  const qmp = await Promise.race([JsonChannel.open(qmpPath), exited]);
  await qmp.next((m) => 'QMP' in m, 10_000).catch(() => {});
  await qmp.execute('{"execute":"qmp_capabilities"}');
  let qga: JsonChannel | null = null;
  let syncId = 1000;
  const agent = async () => {
    if (!qga) qga = await JsonChannel.open(qgaPath);
    // guest-sync flushes whatever a previous, interrupted exchange left in the pipe.
    const id = ++syncId;
    await qga.execute(`{"execute":"guest-sync","arguments":{"id":${id}}}`, 10_000);
    return qga;
  };
  return {
    ports,
    accel,
    async stop() {
      await qmp.execute('{"execute":"stop"}');
    },
    async cont() {
      await qmp.execute('{"execute":"cont"}');
    },
    async syncClock() {
      const ch = await agent();
      // Exact 64-bit ns: a JS Number would round it.
      const ns = BigInt(Date.now()) * 1_000_000n;
      await ch.execute(
        `{"execute":"guest-set-time","arguments":{"time":${ns.toString()}}}`,
        10_000,
      );
    },
    async guestTimeNs() {
      const ch = await agent();
      // Read as text: the ns value does not fit a JS Number exactly.
      const raw = await ch.executeRaw('{"execute":"guest-get-time"}');
      const m = raw.match(/"return"\s*:\s*(\d+)/);
      if (!m) throw new Error(`guest-get-time answered ${raw}`);
      return BigInt(m[1]!);
    },
    appLog: () => readFile(appPath, 'utf8').catch(() => ''),
    consoleLog: () => readFile(consolePath, 'utf8').catch(() => ''),
    async close() {
      qga?.close();
      await qmp.execute('{"execute":"quit"}', 2000).catch(() => {});
      qmp.close();
      await stopProcess(proc);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
