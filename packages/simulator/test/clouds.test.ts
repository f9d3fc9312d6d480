import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { CLOUD_SCENARIO_NAMES, runDrill, runScenario, startSimulator } from '../src/index.js';

const app = fileURLToPath(new URL('./fixtures/tiny-app.mjs', import.meta.url));
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

function run(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

describe('cloud scenarios', () => {
  it('every GCE and EC2 scenario plays on its emulator', async () => {
    for (const name of CLOUD_SCENARIO_NAMES.gcp) {
      const sim = await startSimulator({ cloud: 'gcp' });
      closers.push(() => sim.close());
      runScenario(sim, name, { timeScale: 1000 });
      expect(sim.maintenanceEvent !== 'NONE' || sim.preempted || sim.upcoming !== null).toBe(true);
    }
    for (const name of CLOUD_SCENARIO_NAMES.aws) {
      const sim = await startSimulator({ cloud: 'aws' });
      closers.push(() => sim.close());
      const changes: string[] = [];
      sim.on('change', (c) => changes.push(c.what));
      runScenario(sim, name, { timeScale: 1000 });
      expect(changes.length).toBeGreaterThan(0);
    }
    const sim = await startSimulator({ cloud: 'aws' });
    closers.push(() => sim.close());
    expect(() => runScenario(sim, 'gce-preemption')).toThrow(/known: ec2-/);
  });
});

describe('freezeguard CLI --cloud', { timeout: 60_000 }, () => {
  it('watch --cloud gcp|aws --once prints the document of that cloud', async () => {
    const gce = await startSimulator({ cloud: 'gcp' });
    closers.push(() => gce.close());
    gce.setMaintenanceEvent('MIGRATE_ON_HOST_MAINTENANCE');
    const g = await run(['watch', '--cloud', 'gcp', '--endpoint', gce.url, '--once']);
    expect(g.code).toBe(0);
    expect(g.out).toMatch(/\+ Freeze gce-maintenance-\d+ Started/);
    const ec2 = await startSimulator({ cloud: 'aws', httpTokens: 'required' });
    closers.push(() => ec2.close());
    ec2.interruptSpot({ inMs: 120_000 });
    const a = await run(['watch', '--cloud', 'aws', '--endpoint', ec2.url, '--once']);
    expect(a.code).toBe(0);
    expect(a.out).toMatch(/\+ Preempt aws-spot-terminate-\d+ Scheduled/);
    expect((await run(['watch', '--cloud', 'oracle', '--once'])).code).toBe(64);
  });

  it('simulate --cloud aws --scenario ec2-spot-interruption serves the notice', async () => {
    const child = spawn(
      process.execPath,
      [
        cli,
        'simulate',
        '--cloud',
        'aws',
        '--scenario',
        'ec2-spot-interruption',
        '--time-scale',
        '4',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    closers.push(async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await gone;
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /emulator at (http:\/\/\S+)/.exec(out);
        if (m && /spot\/instance-action changed/.test(out)) resolve(m[1]!);
      });
      child.once('exit', () => reject(new Error(`simulate exited: ${out}`)));
    });
    const token = await fetch(`${url}/latest/api/token`, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' },
    }).then((r) => r.text());
    const res = await fetch(`${url}/latest/meta-data/spot/instance-action`, {
      headers: { 'X-aws-ec2-metadata-token': token },
    });
    expect(res.status).toBe(200);
    const notice = (await res.json()) as { action: string; time: string };
    expect(notice.action).toBe('terminate');
    expect(Date.parse(notice.time) - Date.now()).toBeGreaterThan(20_000);
  });
});

describe('drill --cloud', { timeout: 90_000 }, () => {
  it.each(['gcp', 'aws'] as const)(
    '%s: a guarded app passes, an unguarded one fails',
    async (cloud) => {
      const guarded = await runDrill({
        command: [process.execPath, app],
        cloud,
        freezeMs: 2000,
        noticeMs: 4000,
      });
      expect(guarded.passed).toBe(true);
      expect(
        guarded.timeline.some((e) =>
          (cloud === 'gcp' ? /MIGRATE_ON_HOST_MAINTENANCE/ : /system-maintenance/).test(e.what),
        ),
      ).toBe(true);
      const unguarded = await runDrill({
        command: [process.execPath, app],
        cloud,
        freezeMs: 2000,
        noticeMs: 4000,
        env: { FREEZEGUARD_DISABLED: '1' },
      });
      expect(unguarded.passed).toBe(false);
      expect(unguarded.drainedBeforeFreeze).toBe(false);
    },
  );
});
