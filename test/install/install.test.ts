// Installs the packed tarballs into fresh projects outside the workspace, as a user would,
// with the newest and the oldest supported peers, then runs every ```js block of every
// package README as written (```ts blocks are API sketches, ```sh blocks commands):
// HTTP quick starts through `freezeguard drill` (the CLI installed from the tarball), the
// BullMQ quick start against a private Redis and the emulator.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSimulator } from '@freezeguard/simulator';
import { type RedisHandle, startRedis, until } from '@freezeguard/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PACKAGES = ['core', 'express', 'fastify', 'bullmq', 'streams', 'simulator'];
const PEERS = {
  newest: ['express@^5', 'fastify@^5', 'bullmq@^6', 'ioredis@^6'],
  oldest: ['express@4.21.0', 'fastify@5.0.0', 'bullmq@5.0.0', 'ioredis@5.0.0'],
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
      let child: ChildProcess | undefined;
      try {
        child = spawn('node', [quickStart!], {
          cwd: projects[flavour],
          env: {
            ...process.env,
            // One database per flavour: both run at once, on the same queue name.
            REDIS_URL: `${redis.url}/${flavour === 'newest' ? 1 : 2}`,
            FREEZEGUARD_IMDS_ENDPOINT: sim.url,
            FREEZEGUARD_RESOURCE_NAME: 'vm-1',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout!.on('data', (d) => (out += d));
        child.stderr!.on('data', (d) => (out += d));
        const waitFor = (re: RegExp, ms: number) =>
          until(() => re.test(out), ms, String(re)).catch((err) => {
            throw new Error(`${err.message}; the quick start printed:\n${out}`);
          });
        await waitFor(/sending to ada@example\.com/, 20_000);
        const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 20_000, durationInSeconds: 5 });
        // NotBefore is within the lead time: preparing starts at once; the work phase (the
        // worker's pause) after the default drainDelayMs of 15 s.
        await waitFor(/preparing for maintenance/, 10_000);
        await new Promise((r) => setTimeout(r, 16_000));
        sim.complete(ev.EventId);
        await waitFor(/worker resumed/, 30_000);
        expect(out).not.toMatch(/ WARN | ERROR |Error:/);
      } finally {
        child?.kill('SIGKILL');
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
