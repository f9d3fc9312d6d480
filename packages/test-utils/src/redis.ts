import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@freezeguard/simulator/process';

/** A Redis server a test can use; `stop()` is a no-op for one we did not start. */
export interface RedisHandle {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** True when this helper started `redis-server` itself. */
  readonly owned: boolean;
  stop(): Promise<void>;
}

/** Thrown when no Redis can be had: the message says exactly what to install. */
export class MissingPrerequisiteError extends Error {
  override readonly name = 'MissingPrerequisiteError';
}

/**
 * Sends one RESP `PING` and resolves true on `+PONG`. Raw sockets keep this helper free
 * of any Redis client, so it works before the client packages are even installed.
 */
export function pingRedis(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.once('data', (chunk) => done(chunk.toString().startsWith('+PONG')));
  });
}

function hasRedisServer(): boolean {
  const probe = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return probe.status === 0;
}

/**
 * Gives a test a real Redis: `REDIS_URL` when it is set and answers, else a private
 * `redis-server` on a free port in a temporary directory (stopped by `stop()`). With
 * neither available it throws {@link MissingPrerequisiteError} naming the install command:
 * a test that needs Redis never skips silently.
 *
 * `{ own: true }` always starts a private server (a test that stops Redis must not stop
 * a shared one); `{ port }` reuses a port, to bring a stopped server back.
 *
 * @example
 * ```ts
 * const redis = await startRedis();
 * afterAll(() => redis.stop());
 * const connection = new IORedis(redis.url, { maxRetriesPerRequest: null });
 * ```
 */
export async function startRedis(
  options: { readonly own?: boolean; readonly port?: number } = {},
): Promise<RedisHandle> {
  const fromEnv = options.own ? undefined : process.env.REDIS_URL;
  if (fromEnv) {
    const url = new URL(fromEnv);
    const host = url.hostname || '127.0.0.1';
    const port = Number(url.port || 6379);
    if (await pingRedis(host, port)) {
      return { url: fromEnv, host, port, owned: false, stop: async () => {} };
    }
  }
  if (!hasRedisServer()) {
    throw new MissingPrerequisiteError(
      `Redis is required by this test but none is reachable${fromEnv ? ` at REDIS_URL=${fromEnv}` : ''} and redis-server is not on PATH. Install it with: apt-get update && apt-get install -y redis-server (or set REDIS_URL=redis://127.0.0.1:6379 to a running server).`,
    );
  }
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'freezeguard-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await pingRedis('127.0.0.1', port, 200))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new MissingPrerequisiteError(
        `redis-server did not answer on 127.0.0.1:${port} within 10 s (exit code ${child.exitCode}).`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    owned: true,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A private Redis Cluster of three masters on 127.0.0.1, password-protected. */
export interface RedisClusterHandle {
  /** The startup nodes, as ioredis' `new Cluster(nodes, …)` takes them. */
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  readonly password: string;
  stop(): Promise<void>;
}

/**
 * Starts three `redis-server --cluster-enabled yes` nodes with `requirepass`, joins them
 * with `redis-cli --cluster create` and waits for `cluster_state:ok` (bounded, 20 s).
 * Throws {@link MissingPrerequisiteError} when redis-server or redis-cli is missing.
 *
 * @example
 * ```ts
 * const cluster = await startRedisCluster();
 * const client = new Cluster([...cluster.nodes], { redisOptions: { password: cluster.password } });
 * afterAll(() => cluster.stop());
 * ```
 */
export async function startRedisCluster(): Promise<RedisClusterHandle> {
  const cli = spawnSync('redis-cli', ['--version'], { stdio: 'ignore' });
  if (!hasRedisServer() || cli.status !== 0) {
    throw new MissingPrerequisiteError(
      'A Redis Cluster test needs redis-server and redis-cli: apt-get update && apt-get install -y redis-server',
    );
  }
  const password = 'cluster-secret';
  const dir = await mkdtemp(join(tmpdir(), 'freezeguard-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      ports.push(port);
      children.push(
        spawn(
          'redis-server',
          [
            ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
            ...['--dir', dir, '--cluster-enabled', 'yes'],
            ...['--cluster-config-file', `nodes-${port}.conf`, '--requirepass', password],
            ...['--masterauth', password],
          ],
          { stdio: 'ignore' },
        ),
      );
    }
    const ask = (port: number, ...args: string[]) =>
      spawnSync('redis-cli', ['-p', String(port), '-a', password, '--no-auth-warning', ...args], {
        encoding: 'utf8',
        timeout: 2000,
      }).stdout ?? '';
    for (const port of ports) await waitFor(() => ask(port, 'ping').includes('PONG'), 'node');
    const create = spawnSync(
      'redis-cli',
      [
        ...['-a', password, '--no-auth-warning', '--cluster', 'create'],
        ...ports.map((p) => `127.0.0.1:${p}`),
        ...['--cluster-replicas', '0', '--cluster-yes'],
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create: ${create.stderr}`);
    await waitFor(
      () => ports.every((p) => ask(p, 'cluster', 'info').includes('cluster_state:ok')),
      'cluster_state:ok',
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes: ports.map((port) => ({ host: '127.0.0.1', port })), password, stop };
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Redis Cluster: no ${what} within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
