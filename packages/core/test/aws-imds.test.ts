import { describe, expect, it } from 'vitest';
import { FreezeguardError } from '../src/errors.js';
import { ec2EventEnd, parseEc2EventList } from '../src/sources/aws-events.js';
import { createImdsSession } from '../src/sources/aws-token.js';
import type {
  MetadataClient,
  MetadataRequest,
  MetadataResponse,
} from '../src/sources/metadata-http.js';
import { FakeClock, recordingLogger } from '../src/testing.js';

// The EC2 source's IMDSv2 session and its reading of scheduled events, with a fake clock
// and a scripted client: no network, every timing decided by the test.

type Answer = MetadataResponse | FreezeguardError;

function answer(status: number, body = '', headers: Record<string, string> = {}): MetadataResponse {
  return { status, body: Buffer.from(body), headers };
}

function scripted(script: Answer[]) {
  const calls: { url: string; init: MetadataRequest }[] = [];
  const client: MetadataClient = {
    bind() {},
    get requests() {
      return calls.length;
    },
    async send(url, init = {}) {
      calls.push({ url: url.href, init });
      const next = script.shift() ?? answer(200, 'AQAEAtoken==');
      if (next instanceof FreezeguardError) throw next;
      return next;
    },
    async close() {},
  };
  return { client, calls };
}

function session(script: Answer[], options: { ttlSeconds?: number } = {}) {
  const clock = new FakeClock();
  const logger = recordingLogger();
  const { client, calls } = scripted(script);
  const s = createImdsSession({
    client,
    tokenUrl: new URL('http://169.254.169.254/latest/api/token'),
    ttlSeconds: options.ttlSeconds ?? 21_600,
    timeoutMs: 1_000,
    retryMs: 60_000,
    clock: () => clock,
    logger: () => logger,
  });
  return { s, clock, logger, calls };
}

const timeout = () => new FreezeguardError('ERR_IMDS_TIMEOUT', 'EC2 IMDS did not answer');

describe('IMDSv2 session', () => {
  it('a token PUT that times out falls back to IMDSv1, says why once, and retries on the side', async () => {
    const { s, clock, logger, calls } = session([
      timeout(),
      timeout(),
      answer(200, 'AQAEAfresh==', { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' }),
    ]);
    expect(await s.token()).toBeNull();
    expect(calls[0]!.init).toMatchObject({
      method: 'PUT',
      timeoutMs: 1_000,
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' },
    });
    expect(s.version).toBe(1);
    expect(s.health()).toMatchObject({ version: 1, fallbackSince: clock.now() });
    expect(s.health().fallbackReason).toMatch(/timed out/);
    const warned = logger.lines.filter((l) => l.level === 'warn');
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toMatch(/^freezeguard: EC2 IMDSv2 token unavailable; .*IMDSv1/);
    // Before retryMs: IMDSv1 at once, no new PUT.
    await clock.advance(59_000);
    expect(await s.token()).toBeNull();
    expect(calls).toHaveLength(1);
    // After it: still IMDSv1 for this read (never waiting on a PUT known to hang)…
    await clock.advance(2_000);
    expect(await s.token()).toBeNull();
    expect(calls).toHaveLength(2);
    await clock.flush();
    expect(s.version).toBe(1);
    expect(logger.lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    // …and the next retry that succeeds ends the fallback.
    await clock.advance(61_000);
    expect(await s.token()).toBeNull();
    await clock.flush();
    expect(s.version).toBe(2);
    expect(await s.token()).toBe('AQAEAfresh==');
    expect(s.health()).toEqual({ version: 2, fallbackReason: null, fallbackSince: null });
    expect(logger.lines.some((l) => l.level === 'info' && /fallback over/.test(l.msg))).toBe(true);
    for (const l of logger.lines) expect(l.msg).toMatch(/^freezeguard: [\x20-\x7e]+$/);
  });

  it.each([
    ['unreachable', new FreezeguardError('ERR_IMDS_UNREACHABLE', 'ECONNREFUSED'), /reach/],
    ['403', answer(403), /403/],
    ['404', answer(404), /404/],
    ['405', answer(405), /405/],
  ])('a PUT %s falls back to IMDSv1', async (_n, first, reason) => {
    const { s } = session([first]);
    expect(await s.token()).toBeNull();
    expect(s.health().fallbackReason).toMatch(reason);
  });

  it.each([
    ['400', 400],
    ['500', 500],
  ])('a PUT answering %s is an error, not a fallback', async (_n, status) => {
    const { s } = session([answer(status, 'nope')]);
    await expect(s.token()).rejects.toMatchObject({ code: 'ERR_IMDS_HTTP' });
    expect(s.version).toBeNull();
    expect(s.health().fallbackReason).toBeNull();
  });

  it('honours the lifetime IMDS grants, and the lifetime left it reports on answers', async () => {
    const { s, clock, calls } = session(
      [
        answer(200, 'AQAEAone==', { 'x-aws-ec2-metadata-token-ttl-seconds': '120' }),
        answer(200, 'AQAEAtwo==', { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' }),
        answer(200, 'AQAEAthree=='),
      ],
      { ttlSeconds: 21_600 },
    );
    expect(await s.token()).toBe('AQAEAone==');
    // Granted 120 s, not the 21600 asked for: renewed a minute before those run out.
    await clock.advance(50_000);
    expect(await s.token()).toBe('AQAEAone==');
    await clock.advance(15_000);
    expect(await s.token()).toBe('AQAEAtwo==');
    expect(calls).toHaveLength(2);
    // An answer says the token has 90 s left (revoked early, shortened): renewed before.
    s.observe(answer(200, 'i-1', { 'x-aws-ec2-metadata-token-ttl-seconds': '90' }));
    await clock.advance(20_000);
    expect(await s.token()).toBe('AQAEAtwo==');
    await clock.advance(15_000);
    expect(await s.token()).toBe('AQAEAthree==');
  });

  it('a 401 after the fallback asks for a token again in the foreground', async () => {
    const { s, calls } = session([timeout(), answer(200, 'AQAEAlater==')]);
    expect(await s.token()).toBeNull();
    s.invalidate();
    expect(await s.token()).toBe('AQAEAlater==');
    expect(calls).toHaveLength(2);
  });
});

describe('EC2 scheduled events: how one ended', () => {
  const entry = (over: Record<string, unknown>) => ({
    Code: 'system-maintenance',
    Description: 'Scheduled network maintenance',
    EventId: 'instance-event-0abc',
    NotBefore: '21 Jan 2019 09:00:43 GMT',
    NotAfter: '21 Jan 2019 11:00:43 GMT',
    State: 'active',
    ...over,
  });

  it('parses active entries and the ends finished ones state', () => {
    const list = parseEc2EventList(
      [
        entry({}),
        entry({ EventId: 'e-done', State: 'completed', Description: '[Completed] x' }),
        entry({ EventId: 'e-gone', State: 'canceled', Description: '[Canceled] x' }),
        entry({ EventId: 'e-prefix', State: undefined, Description: '[Completed] x' }),
      ],
      'events/maintenance/scheduled',
    );
    expect(list.active).toEqual([
      {
        id: 'instance-event-0abc',
        code: 'system-maintenance',
        description: 'Scheduled network maintenance',
        notBefore: Date.UTC(2019, 0, 21, 9, 0, 43),
      },
    ]);
    expect([...list.ended]).toEqual([
      ['e-done', 'completed'],
      ['e-gone', 'canceled'],
      ['e-prefix', 'completed'],
    ]);
    expect(() => parseEc2EventList({}, 'x')).toThrow(/must be a JSON array/);
    expect(() => parseEc2EventList([entry({ NotBefore: 'soon' })], 'x')).toThrow(/not a date/);
  });

  it('what EC2 says wins; else gone after NotBefore is completed, gone before it canceled', () => {
    const notBefore = Date.UTC(2026, 0, 1);
    expect(ec2EventEnd({ said: 'canceled', notBefore, now: notBefore + 1 })).toBe('canceled');
    expect(ec2EventEnd({ said: 'completed', notBefore, now: notBefore - 1 })).toBe('completed');
    expect(ec2EventEnd({ said: undefined, notBefore, now: notBefore })).toBe('completed');
    expect(ec2EventEnd({ said: undefined, notBefore, now: notBefore - 1 })).toBe('canceled');
  });
});
