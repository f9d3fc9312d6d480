import { spawn } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startSimulator } from '../src/index.js';
import { delay } from '../src/process.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

function run(args: string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('freezeguard CLI usage', () => {
  it.each([
    ['simulate', ['--port', '--resource', '--scenario', '--time-scale']],
    ['watch', ['--endpoint', '--json', '--once', '--interval']],
    ['drill', ['--freeze', '--notice', '--health', '--json']],
  ])('%s --help lists its options and exits 0', async (command, flags) => {
    for (const help of ['--help', '-h']) {
      const res = await run([command, help]);
      expect(res.code).toBe(0);
      expect(res.stderr).toBe('');
      expect(res.stdout).toMatch(new RegExp(`^Usage: freezeguard ${command}`));
      for (const flag of flags) expect(res.stdout).toContain(flag);
    }
  });

  it('--help and no command', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/freezeguard <command> --help/);
    const none = await run([]);
    expect(none.code).toBe(64);
    expect(none.stdout).toBe('');
  });

  it.each([
    [['simulate', '--port', 'abc'], 'simulate', '--port'],
    [['simulate', '--port', '70000'], 'simulate', '--port'],
    [['simulate', '--time-scale', '0'], 'simulate', '--time-scale'],
    [['simulate', '--scenario', 'nope'], 'simulate', '--scenario'],
    [['watch', '--interval', '0'], 'watch', '--interval'],
    [['watch', '--interval', 'soon'], 'watch', '--interval'],
    [['watch', '--endpoint', 'notaurl'], 'watch', '--endpoint'],
    [['watch', '--give-up-after', '0'], 'watch', '--give-up-after'],
    [['watch', '--json=yes'], 'watch', '--json'],
    [['drill', '--freeze', '0s', '--', 'true'], 'drill', '--freeze'],
    [['drill', '--notice', 'x', '--', 'true'], 'drill', '--notice'],
    [['drill', '--health', 'localhost', '--', 'true'], 'drill', '--health'],
    [['drill', '--freeze'], 'drill', '--freeze'],
    [['drill', '--bogus', '--', 'true'], 'drill', '--bogus'],
    [['drill'], 'drill', 'after --'],
    [['bogus'], '', '"bogus"'],
  ])('%j: exit 64, one line naming %s %s, see --help', async (args, command, named) => {
    const res = await run(args);
    expect(res.code).toBe(64);
    expect(res.stdout).toBe('');
    const lines = res.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const where = command ? `freezeguard ${command}` : 'freezeguard';
    expect(lines[0]!.startsWith(`${where}: `)).toBe(true);
    expect(lines[0]).toContain(named);
    expect(lines[0]).toMatch(new RegExp(`see ${where} --help$`));
    expect(res.stderr).not.toMatch(/ at |Error|ERR_/);
  });
});

describe('freezeguard watch output', () => {
  it('--once reads once without Ctrl-C wording; --json prints the document as IMDS sent it', async () => {
    const sim = await startSimulator({ resourceName: 'vm-1' });
    try {
      sim.schedule({ type: 'Freeze', notBeforeInMs: 60_000, autoStart: false });
      const once = await run(['watch', '--endpoint', sim.url, '--once']);
      expect(once.code).toBe(0);
      expect(once.stdout).toMatch(new RegExp(`^reading ${sim.url} once\\n`));
      expect(once.stdout).not.toMatch(/Ctrl-C/);
      const json = await run(['watch', '--endpoint', sim.url, '--once', '--json']);
      expect(json.code).toBe(0);
      const line = JSON.parse(json.stdout.trim());
      expect(Object.keys(line)).toEqual(['at', 'document']);
      expect(Object.keys(line.document)).toEqual(['DocumentIncarnation', 'Events']);
      const event = line.document.Events[0];
      expect(event).toHaveProperty('NotBefore');
      expect(event).not.toHaveProperty('notBefore');
      expect(Object.keys(event).sort()).toEqual(
        [
          'DurationInSeconds',
          'Description',
          'EventId',
          'EventSource',
          'EventStatus',
          'EventType',
          'NotBefore',
          'ResourceType',
          'Resources',
        ].sort(),
      );
    } finally {
      await sim.close();
    }
  }, 30_000);
});

describe('drill delay', () => {
  it('leaves no abort listener behind, however many waits share one signal', async () => {
    const controller = new AbortController();
    for (let i = 0; i < 20; i++) await delay(1, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    const pending = delay(10_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
  });
});
