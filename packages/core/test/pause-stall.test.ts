import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { PauseInfo } from '../src/index.js';

let child: ChildProcess | undefined;
afterEach(() => {
  if (child && child.exitCode === null) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
});

function startGuardedChild() {
  const script = fileURLToPath(new URL('./fixtures/bin/guard-child.mjs', import.meta.url));
  child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const messages: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => messages.push(JSON.parse(line)));
  const next = async (match: (m: Record<string, unknown>) => boolean, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = messages.find(match);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`no such message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`);
      await sleep(20);
    }
  };
  return { child, messages, next, send: (line: string) => child!.stdin!.write(`${line}\n`) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a real guarded process: an event-loop stall is not a freeze, a process stop is', () => {
  it('a 1.5 s block after NotBefore (event still Scheduled) is a stall and resumes nothing; a 2 s SIGSTOP after Started then ends the cycle', async () => {
    const c = startGuardedChild();
    await c.next((m) => 'ready' in m);
    c.send('announce 2000 5');
    const { announced } = (await c.next((m) => 'announced' in m)) as { announced: number };
    await c.next((m) => m.state === 'ready');
    // The worker observer starts once an event is known; block well after NotBefore.
    await sleep(Math.max(0, announced + 1500 - Date.now()));
    c.send('block 1500');
    const { pause: stall } = (await c.next((m) => 'pause' in m)) as { pause: PauseInfo };
    expect(stall).toMatchObject({ signal: 'stall', corroborated: false });
    expect(Math.abs(stall.pausedMs - 1500)).toBeLessThanOrEqual(300);
    // Past NotBefore + the event's 5 s: a pause would have ended the cycle by now.
    await sleep(Math.max(0, announced + 7000 - Date.now()));
    const states = c.messages.filter((m) => 'state' in m).map((m) => m.state);
    expect(states.at(-1)).toBe('ready');
    expect(states).not.toContain('resuming');
    expect(c.messages.some((m) => 'cycle' in m)).toBe(false);
    // The contrast, in the same process: the event starts, and a real process stop
    // stops the worker too.
    c.send('start');
    await c.next((m) => m.state === 'frozen');
    c.child.kill('SIGSTOP');
    const stoppedAt = performance.now();
    await sleep(2000);
    c.child.kill('SIGCONT');
    const real = performance.now() - stoppedAt;
    const { pause } = (await c.next(
      (m) => 'pause' in m && (m.pause as PauseInfo).signal !== 'stall',
    )) as { pause: PauseInfo };
    expect(pause).toMatchObject({ signal: 'tick-gap', corroborated: true });
    expect(Math.abs(pause.pausedMs - real)).toBeLessThanOrEqual(300);
    expect(await c.next((m) => 'cycle' in m)).toEqual({ cycle: 'resumed' });
    c.send('exit');
  }, 30_000);
});
