import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Simulator, startSimulator } from '@freezeguard/simulator';
import { afterEach, describe, expect, it } from 'vitest';
import { printTable } from '../../../test/helpers/report.js';

// Real processes of one "VM" (one Azure emulator, one runtime directory), each running
// test/fixtures/bin/local-member.mjs: a metadata source wrapped by localCoordinator(),
// driven as a guard drives it. The emulator rate-limits like IMDS (429 above 5/s).
// Needs `npm run build` (the fixture imports dist/).

type Line = Record<string, unknown> & { at: number; pid: number };
interface Member {
  readonly child: ChildProcess;
  readonly lines: Line[];
  readonly prepareMs: number;
}

const script = fileURLToPath(new URL('./fixtures/bin/local-member.mjs', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let sim: Simulator | null = null;
let dir: string | null = null;
const members: Member[] = [];

afterEach(async () => {
  for (const m of members.splice(0)) {
    if (m.child.exitCode !== null || m.child.signalCode !== null) continue;
    m.child.kill('SIGCONT');
    m.child.kill('SIGKILL');
  }
  await sim?.close();
  sim = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

async function vm(): Promise<Simulator> {
  sim = await startSimulator({});
  dir = mkdtempSync(join(tmpdir(), 'fg-local-'));
  return sim;
}

function spawnMember(prepareMs = 600_000): Member {
  const child = spawn(process.execPath, [script], {
    env: {
      ...process.env,
      FREEZEGUARD_IMDS_ENDPOINT: sim!.url,
      FREEZEGUARD_LOCAL_DIR: dir!,
      PREPARE_MS: String(prepareMs),
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: Line[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Line);
    } catch {
      // not ours
    }
  });
  const m = { child, lines, prepareMs };
  members.push(m);
  return m;
}

async function until<T>(
  what: string,
  probe: () => T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) {
      const tail = members.map((m) =>
        m.lines
          .slice(-6)
          .map((l) => JSON.stringify(l))
          .join('\n'),
      );
      throw new Error(`timed out waiting for ${what}\n${tail.join('\n---\n')}`);
    }
    await sleep(20);
  }
}

const roleOf = (m: Member) => [...m.lines].reverse().find((l) => 'role' in l)?.role;
const find = (m: Member, match: (l: Line) => boolean) => m.lines.find(match);
const sawEvent = (m: Member, id: string) =>
  find(m, (l) => Array.isArray(l.events) && (l.events as string[]).includes(id));

/** Waits until every process has joined and exactly one polls; returns that one. */
async function settled(list: readonly Member[]): Promise<Member> {
  await until(
    'every process joined, one poller',
    () =>
      list.every((m) => roleOf(m) === 'leader' || roleOf(m) === 'follower') &&
      list.filter((m) => roleOf(m) === 'leader').length === 1,
  );
  return list.find((m) => roleOf(m) === 'leader')!;
}

/** How many times a process of `list` became the poller. */
const elections = (list: readonly Member[]) =>
  list.reduce((n, m) => n + m.lines.filter((l) => l.role === 'leader').length, 0);

const imdsGets = (s: Simulator, from: number, to: number) =>
  s.requests.filter(
    (r) =>
      r.at >= from &&
      r.at < to &&
      r.path.startsWith('/metadata/scheduledevents') &&
      r.method === 'GET',
  );

describe('VM-local coordination, real processes against the Azure emulator', () => {
  it('4 processes, unequal prepare times: exactly one StartRequests, after the last one prepared', async () => {
    const s = await vm();
    const list = [300, 1500, 2800, 4200].map((ms) => spawnMember(ms));
    await settled(list);
    const ev = s.schedule({ type: 'Freeze', notBeforeInMs: 120_000, autoStart: false });
    const t0 = Date.now();
    await until('an approval', () => s.approvals.length > 0);
    await sleep(1500);
    const approvals = s.approvals.filter((a) => a.eventId === ev.EventId);
    const ready = list.map((m) => find(m, (l) => l.ready === ev.EventId)!);
    const lastReady = Math.max(...ready.map((r) => r.at));
    printTable(
      'local: 4 processes, unequal prepare times (ms after the event was scheduled)',
      Object.fromEntries(
        list.map((m, i) => [
          `process ${i + 1}${roleOf(m) === 'leader' ? ' (poller)' : ''}`,
          {
            'prepare ms': m.prepareMs,
            'saw event': sawEvent(m, ev.EventId)!.at - t0,
            prepared: ready[i]!.at - t0,
            approves: find(m, (l) => l.prepared === ev.EventId && l.approve === true) ? 'yes' : '',
          },
        ]),
      ),
    );
    process.stdout.write(
      `StartRequests: ${approvals.length}, ${approvals[0]!.at - lastReady} ms after the last process prepared\n`,
    );
    expect(approvals).toHaveLength(1);
    expect(approvals[0]!.at).toBeGreaterThanOrEqual(lastReady);
    expect(s.requests.filter((r) => r.status === 429)).toHaveLength(0);
  }, 60_000);

  it('8 processes: one poller, ≤ 1.2 IMDS requests/s, no 429, every process sees a new document within 1.1 s', async () => {
    const s = await vm();
    const list = Array.from({ length: 8 }, () => spawnMember());
    const leader = await settled(list);
    const windowStart = Date.now();
    await sleep(6000);
    const windowEnd = Date.now();
    const rate = (imdsGets(s, windowStart, windowEnd).length * 1000) / (windowEnd - windowStart);
    const latencies: number[] = [];
    const relay: number[] = [];
    for (let i = 0; i < 3; i++) {
      const ev = s.schedule({ type: 'Freeze', notBeforeInMs: 120_000, autoStart: false });
      const t = Date.now();
      await until('all 8 saw the event', () => list.every((m) => sawEvent(m, ev.EventId)));
      const polled = sawEvent(leader, ev.EventId)!.at;
      for (const m of list) {
        latencies.push(sawEvent(m, ev.EventId)!.at - t);
        if (m !== leader) relay.push(sawEvent(m, ev.EventId)!.at - polled);
      }
      await sleep(300 + Math.random() * 700);
    }
    const pollers = list.filter((m) => roleOf(m) === 'leader').length;
    const throttled = s.requests.filter((r) => r.status === 429).length;
    printTable('local: 8 processes on one VM', {
      measured: {
        pollers,
        'IMDS GET/s': rate.toFixed(2),
        '429s': throttled,
        'event seen, max ms': Math.max(...latencies),
        'event seen, median ms': latencies.sort((a, b) => a - b)[latencies.length >> 1]!,
        'relay after poller, max ms': Math.max(...relay),
        'all requests': s.requests.length,
        'pollers elected at start-up': elections(list),
      },
    });
    expect(pollers).toBe(1);
    expect(rate).toBeLessThanOrEqual(1.2);
    expect(throttled).toBe(0);
    expect(Math.max(...latencies)).toBeLessThanOrEqual(1100);
    expect(Math.max(...relay)).toBeLessThanOrEqual(100);
  }, 90_000);

  it('the poller SIGSTOPped: replaced within 3 s; after SIGCONT it steps down, its documents are dropped', async () => {
    const s = await vm();
    const list = Array.from({ length: 4 }, () => spawnMember());
    const old = await settled(list);
    await sleep(1500);
    const stoppedAt = Date.now();
    old.child.kill('SIGSTOP');
    const successor = await until('a new poller', () =>
      list.find((m) => m !== old && find(m, (l) => l.role === 'leader' && l.at > stoppedAt)),
    );
    // The moment it took over is its log line, written just before its first read: the
    // fixture's { role } line samples the role every 20 ms and can follow that read.
    const tookOver = find(
      successor,
      (l) =>
        l.at > stoppedAt &&
        l.msg === 'freezeguard: this process polls the metadata service for its VM',
    )!.at;
    const firstPoll = await until(
      'a poll by the successor',
      () => imdsGets(s, tookOver, Number.POSITIVE_INFINITY)[0],
    );
    await sleep(1000);
    const resumedAt = Date.now();
    old.child.kill('SIGCONT');
    const stepped = await until('the old poller to step down', () =>
      find(old, (l) => l.role === 'follower' && l.at >= resumedAt),
    );
    await sleep(3000);
    const after = imdsGets(s, resumedAt, resumedAt + 3000);
    // The busiest second after SIGCONT: two pollers at once would show ≥ 3.
    let busiest = 0;
    for (const r of after)
      busiest = Math.max(busiest, after.filter((q) => q.at >= r.at && q.at < r.at + 1000).length);
    const ev = s.schedule({ type: 'Freeze', notBeforeInMs: 120_000, autoStart: false });
    await until('every process saw the event', () => list.every((m) => sawEvent(m, ev.EventId)));
    printTable('local: the poller SIGSTOPped, then SIGCONTed', {
      measured: {
        'new poller after (ms)': tookOver - stoppedAt,
        'its first IMDS read after (ms)': firstPoll.at - stoppedAt,
        'old one stepped down after SIGCONT (ms)': stepped.at - resumedAt,
        'IMDS GETs in 3 s after SIGCONT': after.length,
        'busiest second': busiest,
        pollers: list.filter((m) => roleOf(m) === 'leader').length,
      },
    });
    expect(tookOver - stoppedAt).toBeLessThanOrEqual(3000);
    expect(firstPoll.at - stoppedAt).toBeLessThanOrEqual(3000);
    expect(stepped.at - resumedAt).toBeLessThanOrEqual(1000);
    expect(busiest).toBeLessThanOrEqual(2);
    expect(list.filter((m) => roleOf(m) === 'leader')).toHaveLength(1);
    expect(s.requests.filter((r) => r.status === 429)).toHaveLength(0);
  }, 60_000);

  for (const which of ['follower', 'poller'] as const) {
    it(`a ${which} killed while the others wait is dropped, and the event is approved once`, async () => {
      const s = await vm();
      // The slow process starts first when it is to be the poller, last otherwise.
      const slowFirst = which === 'poller';
      const slow = slowFirst ? spawnMember(600_000) : null;
      if (slow) await until('the slow poller', () => roleOf(slow) === 'leader');
      const fast = [300, 600, 900].map((ms) => spawnMember(ms));
      // Otherwise the slow one joins once the others chose their poller among themselves.
      if (!slow) await settled(fast);
      const victim = slow ?? spawnMember(600_000);
      const list = [...fast, victim];
      const leader = await settled(list);
      if (slowFirst) expect(leader).toBe(victim);
      else expect(leader).not.toBe(victim);
      const ev = s.schedule({ type: 'Freeze', notBeforeInMs: 120_000, autoStart: false });
      await until('the fast ones prepared', () =>
        fast.every((m) => find(m, (l) => l.prepared === ev.EventId)),
      );
      await sleep(1000);
      const before = s.approvals.length;
      const killedAt = Date.now();
      victim.child.kill('SIGKILL');
      await until('an approval', () => s.approvals.length > 0, 10_000);
      await sleep(2000);
      const approvals = s.approvals.filter((a) => a.eventId === ev.EventId);
      printTable(`local: the slow ${which} killed while 3 others wait`, {
        measured: {
          'approvals before the kill': before,
          'approvals after': approvals.length,
          'approved after the kill (ms)': approvals[0]!.at - killedAt,
        },
      });
      expect(before).toBe(0);
      expect(approvals).toHaveLength(1);
      expect(approvals[0]!.at).toBeGreaterThanOrEqual(killedAt);
    }, 60_000);
  }

  it('a process that joins while the others wait counts too', async () => {
    const s = await vm();
    const first = [2500, 3000].map((ms) => spawnMember(ms));
    await settled(first);
    const ev = s.schedule({ type: 'Freeze', notBeforeInMs: 120_000, autoStart: false });
    const t0 = Date.now();
    await until('the first two saw it', () => first.every((m) => sawEvent(m, ev.EventId)));
    const late = spawnMember(4000);
    await until('an approval', () => s.approvals.length > 0, 20_000);
    await sleep(1500);
    const lateReady = find(late, (l) => l.ready === ev.EventId)!;
    const approvals = s.approvals.filter((a) => a.eventId === ev.EventId);
    printTable('local: a third process joins while two wait', {
      measured: {
        'joined at (ms)': late.lines[0]!.at - t0,
        'it prepared at (ms)': lateReady.at - t0,
        'approved at (ms)': approvals[0]!.at - t0,
        approvals: approvals.length,
      },
    });
    expect(approvals).toHaveLength(1);
    expect(approvals[0]!.at).toBeGreaterThanOrEqual(lateReady.at);
  }, 60_000);
});
