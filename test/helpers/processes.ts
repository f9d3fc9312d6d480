import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, httpStatus, stopProcessGroup } from '@freezeguard/simulator/process';

export const examples = fileURLToPath(new URL('../../examples/', import.meta.url));

/** Every process an e2e test starts, so that a failing test still cleans up. */
const running = new Set<ChildProcess>();

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => stopProcess(p)));
}

/** Ends a tracked process and its group (continued first, in case a test froze it). */
export async function stopProcess(proc: ChildProcess): Promise<void> {
  await stopProcessGroup(proc);
  running.delete(proc);
}

export function spawnTracked(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  label: string,
): ChildProcess {
  const proc = spawn(cmd, args, {
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  const lines: string[] = [];
  const keep = (d: Buffer) => {
    lines.push(...d.toString().split('\n').filter(Boolean));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  if (process.env.FG_HAPROXY_LOG) {
    const f = `${process.env.FG_HAPROXY_LOG}/${label}-${proc.pid}.log`;
    proc.stdout!.on('data', (d: Buffer) => appendFileSync(f, d));
    proc.stderr!.on('data', (d: Buffer) => appendFileSync(f, d));
  }
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  (proc as ChildProcess & { logs: string[]; label: string }).logs = lines;
  (proc as ChildProcess & { logs: string[]; label: string }).label = label;
  return proc;
}

export function logsOf(proc: ChildProcess): string[] {
  return (proc as ChildProcess & { logs?: string[] }).logs ?? [];
}

export async function waitForStatus(
  url: string,
  status: number,
  timeoutMs = 20_000,
  proc?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await httpStatus(url)) === status) return;
    if (proc && proc.exitCode !== null)
      throw new Error(`process exited (${proc.exitCode}): ${logsOf(proc).slice(-10).join('\n')}`);
    if (Date.now() > deadline)
      throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface App {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly url: string;
}

/** Starts an example app (its own process group, so SIGSTOP reaches all of it). */
export async function startApp(
  example: string,
  env: Record<string, string>,
  label: string,
): Promise<App> {
  const port = await freePort();
  const proc = spawnTracked(
    process.execPath,
    [join(examples, example, 'src', 'server.js')],
    // Azure unless a test says otherwise: on a CI machine that runs on GCE or EC2 the
    // default source would otherwise watch that cloud instead of the emulator.
    { FREEZEGUARD_CLOUD: 'azure', FREEZEGUARD_LOG_LEVEL: 'warn', ...env, PORT: String(port) },
    label,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForStatus(`${url}/health/ready`, 200, 20_000, proc);
  return { proc, port, url };
}

export interface Haproxy {
  readonly url: string;
  /** Backend servers and their check status (`UP`, `UP 1/2`, `DOWN`…); needs `stats: true`. */
  servers(): Promise<{ name: string; status: string }[]>;
  stop(): Promise<void>;
}

/** Reads `show stat` from HAProxy's stats socket. */
function haproxyServers(socketPath: string): Promise<{ name: string; status: string }[]> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let text = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('stats socket timed out')));
    socket.on('connect', () => socket.write('show stat\n'));
    socket.on('data', (d) => {
      text += d.toString();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const [header, ...rows] = text.trim().split('\n');
      const cols = (header ?? '').replace(/^# /, '').split(',');
      const at = (name: string) => cols.indexOf(name);
      resolve(
        rows
          .map((r) => r.split(','))
          .filter(
            (c) => c[at('pxname')] === 'be' && !['BACKEND', 'FRONTEND'].includes(c[at('svname')]!),
          )
          .map((c) => ({ name: c[at('svname')]!, status: c[at('status')]! })),
      );
    });
  });
}

/**
 * HAProxy with active HTTP checks on /health/ready (inter 500ms fall 2 rise 2 unless
 * `probe` says otherwise). `FG_HAPROXY_LOG=<dir>` logs every request and check to a file
 * there, to see when the balancer let go of a backend.
 */
export async function startHaproxy(
  backends: readonly App[],
  options: {
    readonly balance?: 'roundrobin' | 'first';
    readonly serverTimeout?: string;
    /** Name the backend that served each answer (`X-Served-By: s0`…), to see rotation. */
    readonly identify?: boolean;
    /** How long a health check may go unanswered (a frozen backend answers nothing; a slow emulated VM needs more). Default 500ms. */
    readonly checkTimeout?: string;
    /** Open a stats socket: `Haproxy.servers()` then reads the backends' states. */
    readonly stats?: boolean;
    /** How the balancer probes: every `inter`, out after `fall` failures, back after `rise` passes. Default 500ms, 2, 2. */
    readonly probe?: { readonly inter: string; readonly fall: number; readonly rise: number };
  } = {},
): Promise<Haproxy> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'fg-haproxy-'));
  const cfg = join(dir, 'haproxy.cfg');
  await writeFile(
    cfg,
    [
      'global',
      '  maxconn 4096',
      ...(process.env.FG_HAPROXY_LOG ? ['  log stderr format iso local0 info'] : []),
      ...(options.stats ? [`  stats socket ${join(dir, 'stats.sock')} mode 600 level user`] : []),
      'defaults',
      '  mode http',
      ...(process.env.FG_HAPROXY_LOG
        ? ['  log global', '  option httplog', '  option log-health-checks']
        : []),
      '  timeout connect 1s',
      '  timeout client 30s',
      `  timeout server ${options.serverTimeout ?? '3s'}`,
      `  timeout check ${options.checkTimeout ?? '500ms'}`,
      '  retries 2',
      '  option redispatch',
      'frontend fe',
      `  bind 127.0.0.1:${port}`,
      '  default_backend be',
      'backend be',
      `  balance ${options.balance ?? 'roundrobin'}`,
      '  option httpchk GET /health/ready',
      '  http-check expect status 200',
      `  default-server inter ${options.probe?.inter ?? '500ms'} fall ${options.probe?.fall ?? 2} rise ${options.probe?.rise ?? 2}`,
      ...(options.identify ? ['  http-response set-header X-Served-By %s'] : []),
      ...backends.map(
        (b, i) =>
          `  server s${i} 127.0.0.1:${b.port} check${options.balance === 'first' ? ' maxconn 1000' : ''}`,
      ),
      '',
    ].join('\n'),
  );
  const proc = spawnTracked('haproxy', ['-f', cfg, '-db'], {}, 'haproxy');
  const url = `http://127.0.0.1:${port}`;
  await waitForStatus(`${url}/health/ready`, 200, 10_000, proc);
  // Let the first checks pass so every backend is up before load starts.
  await new Promise((r) => setTimeout(r, 1500));
  return {
    url,
    servers: () => haproxyServers(join(dir, 'stats.sock')),
    async stop() {
      await stopProcess(proc);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
