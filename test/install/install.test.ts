// Installs the packed tarballs into fresh projects outside the workspace, as a user would,
// with the newest and the oldest supported peers, then runs every ```js block of every
// package README as written (```ts blocks are API sketches, ```sh blocks commands):
// HTTP quick starts through `freezeguard drill` (the CLI installed from the tarball), the
// BullMQ, fleet and metrics quick starts against a private Redis and the emulator, and a
// BullMQ worker on every other client kind BullMQ 6 runs on (node-redis, Valkey GLIDE).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSimulator } from '@freezeguard/simulator';
import { freePort, type RedisHandle, startRedis, until } from '@freezeguard/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGES = [
  'core',
  'express',
  'fastify',
  'bullmq',
  'streams',
  'simulator',
  'fleet',
  'metrics',
];
// The newest project also holds the other Redis clients BullMQ 6 takes (node-redis,
// Valkey GLIDE); they are no peers of ours, the app brings them.
const PEERS = {
  newest: [
    'express@^5',
    'fastify@^5',
    'bullmq@^6',
    'ioredis@^6',
    'prom-client@^15',
    'redis@^6',
    '@valkey/valkey-glide@^2',
  ],
  oldest: [
    'express@4.21.0',
    'fastify@5.0.0',
    'bullmq@5.0.0',
    'ioredis@5.0.0',
    'prom-client@15.0.0',
  ],
} as const;
type Flavour = keyof typeof PEERS;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, killed (and failing) after `timeoutMs`. */
function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; timeoutMs: number },
): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// A BullMQ worker on one of the other clients BullMQ 6 takes, guarded as the bullmq README
// says. It logs what the test checks: jobs processed, a job added while frozen, and each
// participant's resume outcome once the guard serves again.
const WORKER_KINDS = `
import { createGuard } from '@freezeguard/core';
import { guardConnections, guardWorker } from '@freezeguard/bullmq';
import { createValkeyGlideClient, Queue, Worker } from 'bullmq';

const kind = process.env.CLIENT_KIND;
const url = new URL(process.env.REDIS_URL);
async function connect() {
  if (kind === 'node-redis') {
    const { createClient } = await import('redis');
    const client = createClient({ url: url.href });
    client.on('error', (err) => console.log('node-redis ERROR', err.message));
    await client.connect();
    return client;
  }
  if (kind === 'valkey-glide') {
    const { GlideClient } = await import('@valkey/valkey-glide');
    const client = await GlideClient.createClient({
      addresses: [{ host: url.hostname, port: Number(url.port) }],
    });
    return createValkeyGlideClient(client);
  }
  throw new Error('unknown CLIENT_KIND ' + kind);
}

const name = 'kinds-' + kind;
// No HTTP traffic to drain, so no load balancer to wait for; solo approval starts the
// event as soon as the worker is paused.
const guard = createGuard({ approve: 'solo', drainDelayMs: 0 });
const worker = new Worker(name, async (job) => console.log('processed', job.data.n), {
  connection: await connect(),
});
worker.on('error', (err) => console.log('worker ERROR', err.message));
const queue = new Queue(name, { connection: await connect() });
await queue.obliterate({ force: true });
guardWorker(guard, worker, { pauseTimeoutMs: 5000 });
guardConnections(guard, [queue]);
guard.on('state', (state) => {
  if (state === 'frozen') queue.add('during', { n: 2 }).then(() => console.log('added 2 while frozen'));
});
guard.on('resumed', () => {
  const outcomes = guard.status().participants.map((p) => [p.name, p.resume?.outcome]);
  console.log('resume outcomes ' + JSON.stringify(Object.fromEntries(outcomes)));
});
await guard.start();
await queue.add('before', { n: 1 });
`;

/** A long-running program of the test (a quick start, a worker) and what it printed. */
interface App {
  readonly child: ChildProcess;
  output(): string;
  /** Waits until the output matches; the error quotes the output. */
  waitFor(re: RegExp, ms: number): Promise<void>;
}

function startApp(file: string, cwd: string, env: Record<string, string>): App {
  const child = spawn('node', [file], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return {
    child,
    output: () => out,
    waitFor: (re, ms) =>
      until(() => re.test(out), ms, String(re)).catch((err) => {
        throw new Error(`${err.message}; ${file} printed:\n${out}`);
      }),
  };
}

/** Polls `check` every 250 ms (each check an HTTP request or a CLI run) until it is true. */
async function poll(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** GET with a deadline: the status and body, or the status 0 when it did not answer. */
async function get(url: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

/** The ```js blocks of a README: the snippets that must run as written. */
export function jsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

let work: string;
const projects = {} as Record<Flavour, string>;
let redis: RedisHandle;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'freezeguard-install-'));
  const tarballs = join(work, 'tarballs');
  await mkdir(tarballs);
  const pack = await run(
    'npm',
    [
      'pack',
      '--silent',
      '--pack-destination',
      tarballs,
      ...PACKAGES.flatMap((p) => ['-w', `@freezeguard/${p}`]),
    ],
    { cwd: ROOT, timeoutMs: 60_000 },
  );
  expect(pack.code, pack.stderr).toBe(0);
  const files = pack.stdout
    .trim()
    .split('\n')
    .map((f) => join(tarballs, f.trim()));
  expect(files).toHaveLength(PACKAGES.length);
  // Both projects install at once, from the one npm cache the machine already has.
  await Promise.all(
    (Object.keys(PEERS) as Flavour[]).map(async (flavour) => {
      const dir = join(work, flavour);
      await mkdir(dir);
      await writeFile(
        join(dir, 'package.json'),
        JSON.stringify({ name: `install-${flavour}`, private: true, type: 'module' }),
      );
      const res = await run(
        'npm',
        ['install', '--no-audit', '--no-fund', '--prefer-offline', ...files, ...PEERS[flavour]],
        { cwd: dir, timeoutMs: 240_000 },
      );
      expect(res.code, `${flavour}: ${res.stderr}`).toBe(0);
      expect(res.stderr, flavour).not.toMatch(/ERESOLVE|peer dep|deprecated @freezeguard/i);
      projects[flavour] = dir;
    }),
  );
  await writeFile(join(projects.newest, 'worker-kinds.mjs'), WORKER_KINDS);
  redis = await startRedis();
}, 300_000);

afterAll(async () => {
  await redis?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function snippets(flavour: Flavour, pkg: string): Promise<string[]> {
  const dir = projects[flavour];
  const readme = await readFile(join(dir, 'node_modules/@freezeguard', pkg, 'README.md'), 'utf8');
  const blocks = jsBlocks(readme);
  const paths: string[] = [];
  for (const [i, code] of blocks.entries()) {
    const file = join(dir, `readme-${pkg}-${i}.mjs`);
    await writeFile(file, code);
    paths.push(file);
  }
  return paths;
}

describe('packed tarballs in fresh projects', () => {
  it('every tarball carries its README, LICENSE and dist; the CLI runs', async () => {
    for (const pkg of PACKAGES) {
      const dir = join(projects.newest, 'node_modules/@freezeguard', pkg);
      const meta = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
      expect(meta.publishConfig).toEqual({ access: 'public' });
      expect(meta.repository.directory).toBe(`packages/${pkg}`);
      await expect(readFile(join(dir, 'LICENSE'), 'utf8')).resolves.toMatch(/MIT License/);
      expect(jsBlocks(await readFile(join(dir, 'README.md'), 'utf8')).length).toBeGreaterThan(0);
    }
    const help = await run('npx', ['--no-install', 'freezeguard', '--help'], {
      cwd: projects.newest,
      timeoutMs: 30_000,
    });
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/freezeguard drill/);
  });

  const drills: [Flavour, string][] = [
    ['newest', 'core'],
    ['newest', 'express'],
    ['oldest', 'express'],
    ['newest', 'fastify'],
    ['oldest', 'fastify'],
    ['newest', 'streams'],
  ];
  // The drills run side by side: each is ~20 s of waiting on a mostly idle app.
  it.concurrent.each(drills)(
    '%s peers: the %s README quick start passes `freezeguard drill`',
    async (flavour, pkg) => {
      const [quickStart, ...rest] = await snippets(flavour, pkg);
      expect(rest).toEqual([]);
      const res = await run(
        'npx',
        [
          '--no-install',
          'freezeguard',
          'drill',
          '--freeze',
          '2s',
          '--notice',
          '20s',
          '--json',
          '--',
          'node',
          quickStart!,
        ],
        { cwd: projects[flavour], timeoutMs: 90_000 },
      );
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout)).toMatchObject({ passed: true, drainedBeforeFreeze: true });
    },
    120_000,
  );

  it.concurrent.each(['newest', 'oldest'] as Flavour[])(
    '%s peers: the bullmq README quick start pauses and resumes its worker around a Freeze',
    async (flavour) => {
      const [quickStart, ...rest] = await snippets(flavour, 'bullmq');
      expect(rest).toEqual([]);
      const sim = await startSimulator({ resourceName: 'vm-1' });
      // One database per flavour: both run at once, on the same queue name.
      const app = startApp(quickStart!, projects[flavour], {
        REDIS_URL: `${redis.url}/${flavour === 'newest' ? 1 : 2}`,
        FREEZEGUARD_IMDS_ENDPOINT: sim.url,
        FREEZEGUARD_RESOURCE_NAME: 'vm-1',
      });
      try {
        await app.waitFor(/sending to ada@example\.com/, 20_000);
        const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 20_000, durationInSeconds: 5 });
        // NotBefore is within the lead time: preparing starts at once; the work phase (the
        // worker's pause) after the default drainDelayMs of 15 s.
        await app.waitFor(/preparing for maintenance/, 10_000);
        await new Promise((r) => setTimeout(r, 16_000));
        sim.complete(ev.EventId);
        await app.waitFor(/worker resumed/, 30_000);
        expect(app.output()).not.toMatch(/ WARN | ERROR |Error:/);
      } finally {
        app.child.kill('SIGKILL');
        await sim.close();
      }
    },
    90_000,
  );

  it.concurrent.each(['newest', 'oldest'] as Flavour[])(
    '%s peers: the metrics README quick start serves freezeguard_* on /metrics through a Freeze',
    async (flavour) => {
      const [quickStart, ...rest] = await snippets(flavour, 'metrics');
      expect(rest).toEqual([]);
      const sim = await startSimulator({ resourceName: 'vm-1' });
      const port = await freePort();
      const app = startApp(quickStart!, projects[flavour], {
        PORT: String(port),
        FREEZEGUARD_IMDS_ENDPOINT: sim.url,
        FREEZEGUARD_RESOURCE_NAME: 'vm-1',
      });
      const scrape = () => get(`http://127.0.0.1:${port}/metrics`);
      const shows = (line: RegExp, ms: number) =>
        poll(async () => line.test((await scrape()).body), ms, String(line)).catch((err) => {
          throw new Error(`${err.message}; the quick start printed:\n${app.output()}`);
        });
      try {
        await shows(/^freezeguard_ready 1$/m, 15_000);
        expect((await scrape()).status).toBe(200);
        const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 20_000, durationInSeconds: 5 });
        // Within the lead time: preparing (out of rotation) at once, and scrapes go on.
        await shows(/^freezeguard_ready 0$/m, 10_000);
        expect((await scrape()).body).toMatch(/^freezeguard_state\{state="preparing"\} 1$/m);
        sim.start(ev.EventId);
        await shows(/^freezeguard_state\{state="frozen"\} 1$/m, 30_000);
        sim.complete(ev.EventId);
        await shows(/^freezeguard_cycles_total\{outcome="resumed"\} 1$/m, 15_000);
        const { body } = await scrape();
        expect(body).toMatch(/^freezeguard_ready 1$/m);
        expect(body).toMatch(/^freezeguard_out_of_rotation_seconds_count 1$/m);
        expect(body).toMatch(/^freezeguard_events_total\{[^}]*relevant="true"[^}]*\} 1$/m);
        expect(app.output()).not.toMatch(/ WARN | ERROR |Error:/);
      } finally {
        app.child.kill('SIGKILL');
        await sim.close();
      }
    },
    90_000,
  );

  it.concurrent.each([
    ['newest', 3],
    ['oldest', 4],
  ] as [Flavour, number][])(
    '%s peers: two fleet README quick starts; an event for one VM drains only it, and it approves',
    async (flavour, db) => {
      const [quickStart, ...rest] = await snippets(flavour, 'fleet');
      expect(rest).toEqual([]);
      const sim = await startSimulator({ resourceName: 'vm-a' });
      // Its own database per flavour: both run at once, in the quick start's one group.
      const redisUrl = `${redis.url}/${db}`;
      const ports = [await freePort(), await freePort()];
      const members = ['vm-a', 'vm-b'].map((vm, i) =>
        startApp(quickStart!, projects[flavour], {
          REDIS_URL: redisUrl,
          PORT: String(ports[i]),
          FREEZEGUARD_IMDS_ENDPOINT: sim.url,
          FREEZEGUARD_RESOURCE_NAME: vm,
        }),
      );
      const printed = () => members.map((m, i) => `member ${i}:\n${m.output()}`).join('\n');
      const ready = async (i: number) =>
        (await get(`http://127.0.0.1:${ports[i]}/health/ready`)).status;
      // The group as `freezeguard fleet` (the simulator tarball's CLI) reads it from Redis.
      const group = async () => {
        const cli = await run(
          'npx',
          [
            '--no-install',
            'freezeguard',
            'fleet',
            '--redis',
            redisUrl,
            '--group',
            'checkout-api',
            '--once',
            '--json',
          ],
          { cwd: projects[flavour], timeoutMs: 20_000 },
        );
        expect(cli.code, cli.stderr).toBe(0);
        const snapshot = JSON.parse(cli.stdout) as {
          members: { resourceName: string; alive: boolean; ready: boolean; holdsSlot: boolean }[];
        };
        return Object.fromEntries(snapshot.members.map((m) => [m.resourceName, m]));
      };
      try {
        await poll(
          async () => {
            const g = await group();
            return g['vm-a']?.ready === true && g['vm-b']?.ready === true;
          },
          20_000,
          'both members registered and serving',
        ).catch((err) => {
          throw new Error(`${err.message}\n${printed()}`);
        });
        const ev = sim.schedule({
          type: 'Freeze',
          notBeforeInMs: 60_000,
          durationInSeconds: 5,
          resources: ['vm-a'],
        });
        await poll(async () => (await ready(0)) === 503, 15_000, 'vm-a draining');
        expect(await ready(1)).toBe(200);
        expect(await group()).toMatchObject({
          'vm-a': { alive: true, holdsSlot: true },
          'vm-b': { alive: true, holdsSlot: false, ready: true },
        });
        // After drainDelayMs (15 s) vm-a has prepared; the only member on the VM the event
        // lists, so the last to prepare: it approves, and the event starts long before NotBefore.
        await members[0]!.waitFor(/this one approves the event/, 30_000);
        // The fleet's verdict is logged before the POST reaches the emulator.
        await until(() => sim.approvals.length > 0, 5_000, 'the approval');
        expect(sim.approvals.map((a) => a.eventId)).toEqual([ev.EventId]);
        expect(sim.approvals[0]!.at).toBeLessThan(ev.notBefore);
        await members[0]!.waitFor(/ready -> frozen/, 10_000);
        sim.complete(ev.EventId);
        await members[0]!.waitFor(/freezeguard: resumed/, 15_000);
        await poll(async () => (await ready(0)) === 200, 10_000, 'vm-a back in rotation');
        expect(members[1]!.output()).not.toMatch(/preparing for maintenance/);
        expect(printed()).not.toMatch(/ WARN | ERROR |Error:/);
      } finally {
        for (const m of members) m.child.kill('SIGKILL');
        await sim.close();
      }
    },
    120_000,
  );

  // A worker per client kind BullMQ 6 runs on besides ioredis (which the quick start above
  // covers), from the installed tarballs: TIME and PING must go through BullMQ's own client.
  it.concurrent.each(['node-redis', 'valkey-glide'])(
    'newest peers: a bullmq worker on %s pauses across a Freeze and resumes cleanly',
    async (kind) => {
      const sim = await startSimulator({ resourceName: 'vm-1' });
      const app = startApp(join(projects.newest, 'worker-kinds.mjs'), projects.newest, {
        REDIS_URL: redis.url,
        CLIENT_KIND: kind,
        FREEZEGUARD_IMDS_ENDPOINT: sim.url,
        FREEZEGUARD_RESOURCE_NAME: 'vm-1',
      });
      try {
        await app.waitFor(/processed 1\b/, 20_000);
        const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 20_000, durationInSeconds: 5 });
        // approve: 'solo' and no drain delay: prepared within seconds, then approved, so
        // the emulator starts the event at once.
        await app.waitFor(/ready -> frozen/, 20_000);
        await app.waitFor(/added 2 while frozen/, 5_000);
        sim.complete(ev.EventId);
        await app.waitFor(/worker resumed/, 20_000);
        // BullMQ 6 on GLIDE takes jobs again only after its 10 s blocking wait.
        await app.waitFor(/processed 2\b/, 25_000);
        const out = app.output();
        // The job added while frozen waited for the resume: the worker really was paused.
        expect(out.indexOf('processed 2')).toBeGreaterThan(out.indexOf('worker resumed'));
        const outcomes = JSON.parse(/^resume outcomes (.*)$/m.exec(out)?.[1] ?? 'null');
        expect(outcomes, out).toEqual({
          [`bullmq:kinds-${kind}`]: 'ok',
          'bullmq-connections': 'ok',
        });
        expect(out).not.toMatch(/ WARN | ERROR |Error:/);
      } finally {
        app.child.kill('SIGKILL');
        await sim.close();
      }
    },
    90_000,
  );

  it('the simulator README emulator snippet runs', async () => {
    const [emulator] = await snippets('newest', 'simulator');
    const res = await run('node', [emulator!], { cwd: projects.newest, timeoutMs: 30_000 });
    expect(res.code, res.stderr).toBe(0);
  });
});
