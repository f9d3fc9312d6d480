import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { type RedisHandle, startRedis, until } from '@freezeguard/test-utils';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { testMember } from './helpers.js';

const run = promisify(execFile);
const cli = join(
  dirname(createRequire(import.meta.url).resolve('@freezeguard/simulator/package.json')),
  'dist',
  'cli.js',
);

let redis: RedisHandle;
beforeAll(async () => {
  redis = await startRedis({ own: true });
});
afterAll(() => redis?.stop());

it('freezeguard fleet --once prints members, states, slot holders and pollers', async () => {
  const client = new Redis(redis.url);
  const group = `cli-${randomUUID().slice(0, 8)}`;
  const [a, b] = ['api-1', 'api-2'].map((id, i) => {
    const m = testMember(client, { group, id, resourceName: `vm-${i}` });
    m.start();
    return m;
  }) as [ReturnType<typeof testMember>, ReturnType<typeof testMember>];
  try {
    b.view.state = 'scheduled';
    await until(() => a.fleet.status().members.length === 2, 3000, 'members');
    expect(await a.fleet.acquireSlot(['E-42'])).toBe('granted');
    a.view.state = 'preparing';
    a.view.ready = false;
    await until(
      () => a.fleet.status().members.find((m) => m.id === 'api-1')?.state === 'preparing',
      3000,
      'a beat with the new state',
    );
    const { stdout } = await run(
      process.execPath,
      [cli, 'fleet', '--redis', redis.url, '--group', group, '--once'],
      { timeout: 10_000 },
    );
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      new RegExp(`group ${group}: 2 member\\(s\\), 1 serving, 1 slot\\(s\\) held`),
    );
    expect(lines[1]).toMatch(/MEMBER\s+VM\s+STATE\s+SERVING\s+SLOT\s+POLLER/);
    expect(lines.find((l) => l.startsWith('api-1'))).toMatch(
      /vm-0\s+preparing\s+no\s+held \d+s E-42/,
    );
    expect(lines.find((l) => l.startsWith('api-2'))).toMatch(/vm-1\s+scheduled\s+yes\s+-/);
    const json = await run(
      process.execPath,
      [cli, 'fleet', '--redis', redis.url, '--group', group, '--once', '--json'],
      { timeout: 10_000 },
    );
    expect(JSON.parse(json.stdout).members).toHaveLength(2);
  } finally {
    await a.fleet.stop();
    await b.fleet.stop();
    client.disconnect();
  }
}, 30_000);

it('freezeguard fleet without --group is a usage error', async () => {
  const err = await run(process.execPath, [cli, 'fleet', '--redis', redis.url], {
    timeout: 10_000,
    env: { ...process.env, FREEZEGUARD_FLEET_GROUP: '' },
  }).catch((e: { code: number; stderr: string }) => e);
  expect((err as { code: number }).code).toBe(64);
  expect((err as { stderr: string }).stderr).toMatch(/--group NAME is required/);
});

it('freezeguard fleet never prints the Redis password', async () => {
  // A closed port: the command cannot read the group and says where it tried.
  const { freePort } = await import('@freezeguard/test-utils');
  const port = await freePort();
  const err = await run(
    process.execPath,
    [
      cli,
      'fleet',
      '--redis',
      `redis://app:s3cret-pw@127.0.0.1:${port}/0`,
      '--group',
      'g',
      '--once',
    ],
    { timeout: 15_000 },
  ).catch((e: { code: number; stderr: string }) => e);
  expect((err as { code: number }).code).toBe(2);
  const stderr = (err as { stderr: string }).stderr;
  expect(stderr).toMatch(/cannot read fleet group g at redis:\/\/app:\*\*\*@127\.0\.0\.1/);
  expect(stderr).not.toContain('s3cret-pw');
}, 30_000);
