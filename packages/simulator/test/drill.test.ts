import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { balancerLetGoAt, judgeBalancer } from '../src/drill/judge.js';
import type { DrillReport } from '../src/index.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const app = fileURLToPath(new URL('./fixtures/tiny-app.mjs', import.meta.url));

function run(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('freezeguard drill', () => {
  it('passes a guarded app: drained before the freeze, healthy soon after', async () => {
    const res = await run([
      'drill',
      '--freeze',
      '2s',
      '--notice',
      '6s',
      '--json',
      '--',
      process.execPath,
      app,
    ]);
    // The exit code first: when the drill fails, its stderr says why.
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as DrillReport;
    expect(report.passed).toBe(true);
    expect(report.drainedBeforeFreeze).toBe(true);
    expect(report.drainLeadMs).toBeGreaterThan(500);
    expect(report.recoveredAfterMs).toBeLessThan(5_000);
    expect(report.approved).toBe(true);
    // progress went to stderr while it ran
    expect(res.stderr).toMatch(/SIGSTOP/);
    expect(res.stderr).not.toMatch(/MaxListenersExceeded|Warning/);
  }, 60_000);

  it('fails an unguarded app with the right verdict', async () => {
    const res = await run(
      ['drill', '--freeze', '2s', '--notice', '2s', '--', process.execPath, app],
      { FREEZEGUARD_DISABLED: '1' },
    );
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/FAIL: health did not fail before the freeze/);
    expect(res.stdout).toMatch(/\| drained before the freeze \| no \|/);
  }, 60_000);

  it('exits 2 with a clear message when the app never becomes healthy', async () => {
    const res = await run([
      'drill',
      '--freeze',
      '1s',
      '--',
      process.execPath,
      '-e',
      'process.exit(3)',
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/exited \(3\) before it was healthy/);
  }, 30_000);

  it('rejects bad usage with exit 64', async () => {
    expect((await run(['drill', '--freeze', 'soon', '--', 'true'])).code).toBe(64);
    expect((await run(['drill'])).code).toBe(64);
    expect((await run(['bogus'])).code).toBe(64);
  });
});

describe('freezeguard watch', () => {
  it('exits non-zero with a clear message when IMDS is unreachable', async () => {
    const res = await run(['watch', '--endpoint', 'http://127.0.0.1:9', '--interval', '200ms']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/IMDS is unreachable at http:\/\/127\.0\.0\.1:9/);
  }, 30_000);

  it('prints the document of an emulated IMDS', async () => {
    const { startSimulator } = await import('../src/index.js');
    const sim = await startSimulator({ resourceName: 'vm-1' });
    try {
      sim.schedule({ type: 'Freeze', notBeforeInMs: 60_000, autoStart: false });
      const res = await run(['watch', '--endpoint', sim.url, '--once']);
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/\+ Freeze [0-9A-F-]+ Scheduled NotBefore/);
      const json = await run(['watch', '--endpoint', sim.url, '--once', '--json']);
      expect(JSON.parse(json.stdout.trim()).document.Events[0].EventType).toBe('Freeze');
    } finally {
      await sim.close();
    }
  }, 30_000);
});

describe('freezeguard drill, interrupted', () => {
  it('Ctrl-C while the app is frozen: the app is resumed and stopped, exit 130', async () => {
    const child = spawn(
      process.execPath,
      [cli, 'drill', '--freeze', '30s', '--notice', '2s', '--', process.execPath, app],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    const deadline = Date.now() + 30_000;
    while (!/SIGSTOP/.test(out) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const pid = Number(/pid (\d+)/.exec(out)?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0]).toBe('T'); // stopped
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    expect(alive).toBe(false);
  }, 60_000);
});

describe('drill --lb: the balancer emulated from the probes', () => {
  const probe = (t: number, ok: boolean) => ({ t, ok, status: ok ? 200 : 503, doneAt: t + 5 });
  const probes = [
    probe(0, true),
    probe(1000, false),
    probe(2000, true),
    probe(3000, false),
    probe(4000, false),
    probe(5000, false),
    probe(6000, false),
  ];

  it('lets go at the last answer of the first streak of `unhealthyThreshold` failures that lasts into the freeze', () => {
    expect(balancerLetGoAt(probes, 1, 6500)).toBe(3005);
    expect(balancerLetGoAt(probes, 3, 6500)).toBe(5005);
    expect(balancerLetGoAt(probes, 3, 5000)).toBeNull();
    expect(balancerLetGoAt(probes, 5, 6500)).toBeNull();
  });

  it('fails an app that approved or froze while the balancer still routed to it', () => {
    const passed = {
      passed: true,
      verdict: 'PASS: drained 3500 ms before the freeze, healthy 200 ms after it',
      drainedBeforeFreeze: true,
      drainingAt: 3000,
      drainLeadMs: 3500,
      outOfRotationMs: 9000,
      recoveredAfterMs: 200,
    };
    expect(judgeBalancer(passed, { letGoAt: 5005, approvedAt: 5600, stopAt: 6500 })).toMatchObject({
      passed: true,
      verdict: `${passed.verdict}; the balancer let go 1495 ms before the freeze`,
    });
    expect(judgeBalancer(passed, { letGoAt: 5005, approvedAt: 4000, stopAt: 6500 })).toMatchObject({
      passed: false,
      verdict:
        'FAIL: the app approved while the balancer still routed requests to it (1005 ms before it let go): the freeze was brought forward onto live traffic',
    });
    expect(judgeBalancer(passed, { letGoAt: null, approvedAt: null, stopAt: 6500 }).verdict).toBe(
      'FAIL: the balancer still routed requests to the app when it was frozen',
    );
  });

  it('fails a drill whose app approves after a fixed delay shorter than the balancer needs', async () => {
    // The tiny app approves 1 s into its drain; a balancer probing every second that
    // needs 3 failures is still routing to it then.
    const res = await run([
      'drill',
      '--lb',
      '1000x3',
      '--freeze',
      '2s',
      '--notice',
      '8s',
      '--',
      process.execPath,
      app,
    ]);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stdout).toMatch(
      /FAIL: .*the app approved while the balancer still routed requests to it/,
    );
    expect(res.stdout).toMatch(/\| balancer \| every 1 s, out after 3 failure\(s\) \|/);
  }, 60_000);

  it('passes an app that confirms the drain: it approves only once the emulated balancer let go', async () => {
    const httpApp = fileURLToPath(new URL('./fixtures/http-app.mjs', import.meta.url));
    const res = await run([
      'drill',
      '--lb',
      '1000x3',
      '--freeze',
      '2s',
      '--notice',
      '15s',
      '--json',
      '--',
      process.execPath,
      httpApp,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const report = JSON.parse(res.stdout) as DrillReport;
    expect(report.approved).toBe(true);
    expect(report.balancer).toMatchObject({ intervalMs: 1000, unhealthyThreshold: 3 });
    expect(report.balancer!.letGoAt).not.toBeNull();
    expect(report.verdict).toMatch(/the balancer let go \d+ ms before the freeze/);
    // It approved well before the 30 s drain cap: the drain was confirmed, not waited out.
    expect(report.detail!.readyAt! - report.detail!.drainingAt!).toBeLessThan(10_000);
  }, 60_000);

  it('rejects an unknown balancer with exit 64', async () => {
    const res = await run(['drill', '--lb', 'nginx', '--', 'true']);
    expect(res.code).toBe(64);
    expect(res.stderr).toMatch(/--lb: unknown balancer preset "nginx"/);
  });
});
