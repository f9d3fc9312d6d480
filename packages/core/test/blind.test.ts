import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createGuard,
  FreezeguardError,
  type MaintenanceSource,
  type SourceContext,
  type SourceHealth,
} from '../src/index.js';
import { blindRemedy, sourceBlindness } from '../src/sources/blind.js';
import { defaultSource, noCloudSource } from '../src/sources/default.js';
import { createPollLoop } from '../src/sources/poll-loop.js';
import { FakeClock, MemorySource } from '../src/testing.js';
import { recordingLogger, T0 } from './helpers.js';

// Issue 21, item 4: a guard that cannot reach its metadata service must say so (one
// error line per streak, status().blind), may refuse to start (requireSource), and stays
// ready; a machine with no cloud at all polls nothing and says so once.

const healthy: SourceHealth = {
  lastSuccessAt: null,
  lastErrorAt: null,
  lastError: null,
  consecutiveFailures: 0,
  requests: 0,
};

describe('sourceBlindness (pure)', () => {
  const judge = (health: Partial<SourceHealth>, now: number) =>
    sourceBlindness({
      health: { ...healthy, ...health },
      startedAt: 1000,
      now,
      blindAfterMs: 30_000,
    });

  it('never answered: blind exactly blindAfterMs after the start', () => {
    expect(judge({}, 30_999)).toMatchObject({ blind: false });
    expect(judge({}, 31_000)).toEqual({ blind: true, since: 1000, cause: 'no answer yet' });
  });

  it('answers only errors: blind after blindAfterMs, naming the last error', () => {
    const errors = {
      consecutiveFailures: 12,
      lastErrorAt: 30_000,
      lastError: { code: 'ERR_IMDS_TIMEOUT', message: 'IMDS timed out' },
    };
    expect(judge(errors, 31_000)).toEqual({
      blind: true,
      since: 1000,
      cause: 'ERR_IMDS_TIMEOUT: IMDS timed out',
    });
  });

  it('counts from the last good answer, and a success ends it', () => {
    expect(judge({ lastSuccessAt: 50_000 }, 79_999).blind).toBe(false);
    expect(judge({ lastSuccessAt: 50_000 }, 80_000)).toMatchObject({
      blind: true,
      since: 50_000,
      cause: 'no answer since the last good one',
    });
  });

  it('a read waiting after a good answer (a hanging GET) is not blindness; after errors it is', () => {
    expect(judge({ lastSuccessAt: 2000, readingSince: 2100 }, 200_000).blind).toBe(false);
    const failing = {
      lastSuccessAt: 2000,
      readingSince: 2100,
      consecutiveFailures: 1,
      lastError: { code: 'ERR_IMDS_UNREACHABLE', message: 'refused' },
    };
    expect(judge(failing, 200_000).blind).toBe(true);
  });

  it('the remedy names AKS link-local access, the EKS hop limit and the proxy', () => {
    for (const kind of ['azure-imds', 'ec2-imds', 'gce-metadata', 'memory']) {
      const text = blindRemedy(kind);
      expect(text).toMatch(/^[\x20-\x7e]+$/);
      if (kind !== 'gce-metadata') {
        expect(text).toContain('podLinkLocalAccess');
        expect(text).toContain('HttpPutResponseHopLimit to 2');
      }
      expect(text).toContain('NO_PROXY');
      expect(text).toContain('169.254.169.254');
    }
  });
});

/** A source that never answers, at a named endpoint, until the test says so. */
class SilentSource extends MemorySource {
  readonly endpoint = 'http://169.254.169.254';
  ctx: SourceContext | null = null;
  override start(context: SourceContext): void {
    this.ctx = context;
    super.start(context);
  }
}

function blindGuard(options: { requireSource?: boolean; blindAfterMs?: number } = {}) {
  const clock = new FakeClock({ now: T0 });
  const source = new SilentSource({ resourceName: 'vm-1' });
  const logger = recordingLogger();
  const guard = createGuard({ source, clock, timers: clock, logger, ...options });
  const errors = () => logger.lines.filter((l) => l.level === 'error');
  return { clock, source, logger, guard, errors };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('a blind guard says so', () => {
  it('one error line per streak with endpoint, cause and remedy; status().blind; still ready', async () => {
    const s = blindGuard();
    cleanups.push(() => s.guard.stop());
    await s.guard.start();
    await s.clock.advance(29_000);
    expect(s.guard.status().blind).toBe(false);
    expect(s.errors()).toHaveLength(0);

    await s.clock.advance(1_000);
    const status = s.guard.status();
    expect(status.blind).toBe(true);
    expect(status.source).toMatchObject({
      endpoint: 'http://169.254.169.254',
      watching: true,
      blindSince: new Date(T0).toISOString(),
      blindCause: 'no answer yet',
    });
    expect(s.guard.isReady()).toBe(true);
    expect(s.errors()).toHaveLength(1);
    const line = s.errors()[0]!;
    expect(line.msg).toMatch(
      /^freezeguard: metadata service unreachable at http:\/\/169\.254\.169\.254/,
    );
    expect(line.msg).toMatch(/^[\x20-\x7e]+$/);
    for (const part of [
      'no answer yet',
      'podLinkLocalAccess',
      'HttpPutResponseHopLimit',
      'NO_PROXY',
    ])
      expect(line.msg).toContain(part);

    // Errors later in the same streak: no second line.
    s.source.ctx?.onError(new FreezeguardError('ERR_IMDS_TIMEOUT', 'IMDS timed out'), 1);
    await s.clock.advance(10 * 60_000);
    expect(s.errors()).toHaveLength(1);
    expect(s.guard.isReady()).toBe(true);

    // It sees again: one info line, not blind.
    s.source.publish({ DocumentIncarnation: 1, Events: [] });
    await s.clock.advance(0);
    expect(s.guard.status().blind).toBe(false);
    expect(s.guard.status().source.blindSince).toBeNull();
    expect(s.logger.lines.filter((l) => /answers again/.test(l.msg))).toHaveLength(1);

    // A new streak: a new line.
    await s.clock.advance(30_000);
    expect(s.guard.status().blind).toBe(true);
    expect(s.errors()).toHaveLength(2);
    expect(s.guard.status().source.blindCause).toBe('no answer since the last good one');
  });

  it('a source that keeps answering is never blind', async () => {
    const s = blindGuard();
    cleanups.push(() => s.guard.stop());
    await s.guard.start();
    for (let i = 0; i < 120; i++) {
      s.source.publish({ DocumentIncarnation: 1, Events: [] });
      await s.clock.advance(1_000);
    }
    expect(s.guard.status().blind).toBe(false);
    expect(s.errors()).toHaveLength(0);
  });

  it('blindAfterMs is checked at construction, as is requireSource', () => {
    const source = new MemorySource();
    expect(() => createGuard({ source, blindAfterMs: 0 })).toThrow(/blindAfterMs/);
    expect(() => createGuard({ source, requireSource: 'yes' as unknown as boolean })).toThrow(
      /requireSource/,
    );
  });
});

describe('requireSource', () => {
  it('start() rejects with ERR_SOURCE_BLIND naming endpoint and remedy; the guard is stopped', async () => {
    const s = blindGuard({ requireSource: true, blindAfterMs: 5_000 });
    const started = s.guard.start();
    const outcome = started.then(
      () => null,
      (err: unknown) => err,
    );
    await s.clock.advance(5_000);
    const err = (await outcome) as FreezeguardError;
    expect(err).toBeInstanceOf(FreezeguardError);
    expect(err.code).toBe('ERR_SOURCE_BLIND');
    expect(err.message).toContain('http://169.254.169.254');
    expect(err.message).toContain('podLinkLocalAccess');
    expect(s.guard.status().running).toBe(false);
    expect(s.source.started).toBe(false);
  });

  it('start() resolves at the first good answer', async () => {
    const s = blindGuard({ requireSource: true });
    cleanups.push(() => s.guard.stop());
    let done = false;
    const started = s.guard.start().then(() => {
      done = true;
    });
    await s.clock.advance(2_000);
    expect(done).toBe(false);
    s.source.publish({ DocumentIncarnation: 1, Events: [] });
    await s.clock.advance(0);
    await started;
    expect(done).toBe(true);
    expect(s.guard.status().running).toBe(true);
  });
});

describe('no cloud', () => {
  let empty = '';
  beforeAll(async () => {
    empty = await mkdtemp(join(tmpdir(), 'fg-dmi-none-'));
  });
  afterAll(async () => {
    await rm(empty, { recursive: true, force: true });
  });

  it('no DMI match and nothing configured: the default source reads nothing', () => {
    expect(defaultSource({}, { dmiDir: empty }).kind).toBe('none');
    expect(defaultSource({}, { dmiDir: empty }).watching).toBe(false);
    // Anything that configures a cloud or an endpoint keeps today's behaviour.
    expect(defaultSource({ FREEZEGUARD_CLOUD: 'aws' }, { dmiDir: empty }).kind).toBe('ec2-imds');
    expect(
      defaultSource({ FREEZEGUARD_IMDS_ENDPOINT: 'http://127.0.0.1:9' }, { dmiDir: empty }).kind,
    ).toBe('azure-imds');
  });

  it('one info line, no polling, never blind; requireSource refuses at once', async () => {
    const clock = new FakeClock({ now: T0 });
    const logger = recordingLogger();
    const source: MaintenanceSource = noCloudSource();
    const guard = createGuard({ source, clock, timers: clock, logger, approve: 'never' });
    cleanups.push(() => guard.stop());
    await guard.start();
    await clock.advance(10 * 60_000);
    const notes = logger.lines.filter((l) => /no cloud detected/.test(l.msg));
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ level: 'info' });
    expect(notes[0]!.msg).toMatch(/^freezeguard: no cloud detected .*not polling/);
    expect(logger.lines.filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
    const status = guard.status();
    expect(status.blind).toBe(false);
    expect(status.source).toMatchObject({ kind: 'none', watching: false, requests: 0 });

    const strict = createGuard({
      source: noCloudSource(),
      clock,
      timers: clock,
      logger: recordingLogger(),
      requireSource: true,
    });
    await expect(strict.start()).rejects.toMatchObject({
      code: 'ERR_SOURCE_BLIND',
      message: expect.stringMatching(/no cloud detected/),
    });
  });
});

describe('the poll loop reports the read in flight', () => {
  it('readingSince is set while a read waits and cleared when it ends', async () => {
    const clock = new FakeClock({ now: T0 });
    let release: () => void = () => {};
    const loop = createPollLoop({
      label: 'test',
      client: {
        bind() {},
        send: async () => ({ status: 200, body: Buffer.alloc(0), headers: {} }),
        requests: 0,
        close: async () => {},
      },
      intervalMs: 60_000,
      maxBackoffMs: 60_000,
      read: () =>
        new Promise((resolve) => {
          release = () => resolve({ document: { incarnation: 1, events: [] } });
        }),
    });
    loop.start({
      logger: recordingLogger(),
      clock,
      timers: clock,
      onDocument() {},
      onError() {},
    });
    await clock.advance(5_000);
    expect(loop.health().readingSince).toBe(T0);
    release();
    await clock.flush();
    expect(loop.health()).toMatchObject({ readingSince: null, lastSuccessAt: T0 + 5_000 });
    loop.stop();
  });
});
