import { awsInstanceEvents, createGuard } from '@freezeguard/core';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type AwsSimulator, type AwsSimulatorOptions, startSimulator } from '../src/index.js';
import { until, delay as wait } from '../src/process.js';
import { recordSource, withDeadProxy } from './source-harness.js';

let sim: AwsSimulator;
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (stops.length) await stops.pop()!();
  await sim?.close();
});
const savedName = process.env.FREEZEGUARD_RESOURCE_NAME;
delete process.env.FREEZEGUARD_RESOURCE_NAME;
afterEach(() => {
  if (savedName !== undefined) process.env.FREEZEGUARD_RESOURCE_NAME = savedName;
  else delete process.env.FREEZEGUARD_RESOURCE_NAME;
});

const ID = 'i-0abc123def4567890';
async function ec2(options: AwsSimulatorOptions = {}) {
  sim = await startSimulator({ cloud: 'aws', resourceName: ID, ...options });
  return sim;
}

function watchSource(options: Parameters<typeof awsInstanceEvents>[0] = {}) {
  const source = awsInstanceEvents({
    endpoint: sim.url,
    pollIntervalMs: 200,
    maxBackoffMs: 1_000,
    ...options,
  });
  return recordSource(source, stops);
}

describe('awsInstanceEvents against the EC2 emulator', { timeout: 20_000 }, () => {
  it('IMDSv2: one token PUT with a TTL, every GET carries it; proxies and the global dispatcher are ignored', async () => {
    await ec2({ httpTokens: 'required' });
    await withDeadProxy(async () => {
      const w = watchSource();
      await until(() => w.docs.length >= 3, 5_000, 'three documents');
      expect(w.errors).toEqual([]);
      expect(w.source.imdsVersion).toBe(2);
      const puts = sim.requests.filter((r) => r.method === 'PUT');
      expect(puts).toHaveLength(1);
      expect(puts[0]!.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe('21600');
      for (const r of sim.requests) {
        expect(r.headers['x-forwarded-for']).toBeUndefined();
        if (r.method === 'GET') expect(typeof r.headers['x-aws-ec2-metadata-token']).toBe('string');
        expect(r.status === 200 || r.status === 404).toBe(true);
      }
      expect(w.last().events).toEqual([]);
      expect(await w.source.resolveResourceName()).toBe(ID);
      expect(w.source.supportsApproval).toBe(false);
      await expect(w.source.approve('x')).rejects.toMatchObject({
        code: 'ERR_APPROVAL_UNSUPPORTED',
      });
    });
  });

  it('the emulator keeps the IMDSv2 rules: TTL 1–21600, 401 without a valid token, 403 through a forwarder', async () => {
    await ec2({ httpTokens: 'required' });
    const put = (headers: Record<string, string>) =>
      request(`${sim.url}/latest/api/token`, { method: 'PUT', headers }).then(async (r) => ({
        status: r.statusCode,
        text: await r.body.text(),
      }));
    expect((await put({})).status).toBe(400);
    expect((await put({ 'X-aws-ec2-metadata-token-ttl-seconds': '21601' })).status).toBe(400);
    const fwd = await put({
      'X-aws-ec2-metadata-token-ttl-seconds': '60',
      'X-Forwarded-For': '10.0.0.1',
    });
    expect(fwd.status).toBe(403);
    const ok = await put({ 'X-aws-ec2-metadata-token-ttl-seconds': '1' });
    expect(ok.status).toBe(200);
    const get = (token?: string) =>
      request(`${sim.url}/latest/meta-data/instance-id`, {
        headers: token ? { 'X-aws-ec2-metadata-token': token } : {},
      }).then(async (r) => ({ status: r.statusCode, text: await r.body.text() }));
    expect(await get(ok.text)).toEqual({ status: 200, text: ID });
    expect((await get()).status).toBe(401);
    expect((await get('forged')).status).toBe(401);
    await wait(1_100);
    expect((await get(ok.text)).status).toBe(401);
  });

  it('renews the token before it expires, and after a 401', async () => {
    await ec2({ httpTokens: 'required' });
    const w = watchSource({ tokenTtlSeconds: 2 });
    await wait(4_500);
    expect(sim.tokensIssued).toBeGreaterThanOrEqual(2);
    expect(sim.requests.filter((r) => r.status === 401)).toEqual([]);
    sim.revokeTokens();
    const issued = sim.tokensIssued;
    const docs = w.docs.length;
    await until(() => w.docs.length > docs + 2, 5_000, 'documents after the revocation');
    expect(sim.tokensIssued).toBeGreaterThan(issued);
    expect(w.errors).toEqual([]);
  });

  it('falls back to IMDSv1 only when the token call is not there', async () => {
    await ec2({ httpTokens: 'v1-only' });
    const w = watchSource();
    await until(() => w.docs.length >= 3, 5_000, 'documents');
    expect(w.source.imdsVersion).toBe(1);
    expect(sim.requests.filter((r) => r.method === 'PUT')).toHaveLength(1);
    expect(w.logger.lines.filter((l) => /IMDSv1/.test(l.msg))).toHaveLength(1);
    for (const r of sim.requests.filter((r) => r.method === 'GET'))
      expect(r.headers['x-aws-ec2-metadata-token']).toBeUndefined();
  });

  it('a token call that fails otherwise is an error, not a fallback', async () => {
    await ec2({ httpTokens: 'required' });
    const w = watchSource({ tokenTtlSeconds: 21_600 });
    await until(() => w.docs.length >= 1, 5_000, 'a document');
    sim.revokeTokens();
    sim.fault({ status: 500, path: 'api/token', times: 2 });
    await until(() => w.errors.length >= 1, 5_000, 'an error');
    expect(w.errors[0]!.error).toMatchObject({ code: 'ERR_IMDS_HTTP' });
    expect(w.source.imdsVersion).toBe(2);
    await until(() => w.source.health().consecutiveFailures === 0, 5_000, 'recovery');
    expect(
      sim.requests.filter((r) => r.method === 'GET' && r.status === 200).at(-1)!.headers[
        'x-aws-ec2-metadata-token'
      ],
    ).toBeDefined();
  });

  it('Spot interruption → Preempt at its time, for this instance, with a stable EventId', async () => {
    await ec2();
    const w = watchSource();
    await until(() => w.docs.length >= 1, 5_000, 'a document');
    const notice = sim.interruptSpot({ action: 'terminate', inMs: 120_000 });
    await until(() => w.last().events.length === 1, 5_000, 'the interruption');
    const ev = w.last().events[0]!;
    expect(ev).toMatchObject({
      kind: 'Preempt',
      status: 'Scheduled',
      resources: [ID],
      origin: 'Platform',
    });
    expect(ev.notBefore).toBe(Date.parse(notice.time));
    expect(ev.description).toMatch(/Spot/);
    const n = w.docs.length;
    await until(() => w.docs.length > n + 2, 5_000, 'more documents');
    expect(w.last().events[0]!.id).toBe(ev.id);
    expect(w.last().incarnation).toBe(w.docs[n - 1]!.incarnation);
  });

  it('scheduled events: codes mapped, days ahead kept as NotBefore; a completed one is Started once, a canceled one leaves', async () => {
    await ec2();
    const reboot = sim.scheduleEvent({ code: 'system-reboot', notBeforeInMs: 3 * 86_400_000 });
    const maint = sim.scheduleEvent({ code: 'system-maintenance', notBeforeInMs: 86_400_000 });
    const stop = sim.scheduleEvent({ code: 'instance-stop', notBeforeInMs: 7 * 86_400_000 });
    const retire = sim.scheduleEvent({ code: 'instance-retirement' });
    const ireboot = sim.scheduleEvent({ code: 'instance-reboot' });
    expect(reboot.NotBefore).toMatch(/^\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    const w = watchSource();
    await until(() => w.last()?.events.length === 5, 5_000, 'five events');
    const byId = Object.fromEntries(w.last().events.map((e) => [e.id, e]));
    expect(byId[reboot.EventId]).toMatchObject({ kind: 'Reboot', resources: [ID] });
    expect(byId[reboot.EventId]!.notBefore).toBe(Date.parse(`${reboot.NotBefore}`));
    expect(byId[maint.EventId]!.kind).toBe('Freeze');
    expect(byId[stop.EventId]!.kind).toBe('Terminate');
    expect(byId[retire.EventId]!.kind).toBe('Terminate');
    expect(byId[ireboot.EventId]!.kind).toBe('Reboot');
    const seen = w.docs.length;
    sim.completeEvent(reboot.EventId);
    sim.cancelEvent(stop.EventId);
    await until(() => w.last().events.length === 3, 5_000, 'two events leaving');
    // EC2 moved both to history; the completed one was listed Started once on the way out.
    expect(sim.scheduled().map((e) => e.EventId)).not.toContain(reboot.EventId);
    expect(sim.history().find((e) => e.EventId === stop.EventId)!.State).toBe('canceled');
    expect(sim.history().find((e) => e.EventId === reboot.EventId)!.State).toBe('completed');
    const after = w.docs.slice(seen).flatMap((d) => d.events);
    expect(after.filter((e) => e.id === reboot.EventId).map((e) => e.status)).toContain('Started');
    expect(after.filter((e) => e.id === stop.EventId && e.status === 'Started')).toEqual([]);
    expect(sim.requests.some((r) => r.path.endsWith('events/maintenance/history'))).toBe(true);
    expect(w.errors).toEqual([]);
  });

  it('a completed entry still listed under scheduled (State completed) is a completion too', async () => {
    await ec2({ keepFinishedInScheduled: true });
    const maint = sim.scheduleEvent({ code: 'system-maintenance', notBeforeInMs: 86_400_000 });
    const other = sim.scheduleEvent({ code: 'system-reboot', notBeforeInMs: 86_400_000 });
    const w = watchSource();
    await until(() => w.last()?.events.length === 2, 5_000, 'two events');
    const seen = w.docs.length;
    sim.completeEvent(maint.EventId);
    sim.cancelEvent(other.EventId);
    await until(() => w.last().events.length === 0, 5_000, 'both leaving');
    const after = w.docs.slice(seen).flatMap((d) => d.events);
    expect(after.filter((e) => e.status === 'Started').map((e) => e.id)).toEqual([maint.EventId]);
    expect(sim.scheduled().map((e) => e.State)).toEqual(['completed', 'canceled']);
  });

  it('a container behind an IMDSv2 hop limit of 1: the token PUT times out, IMDSv1 GETs see the Spot notice, the token is retried', async () => {
    await ec2({ httpTokens: 'optional', httpPutResponseHopLimit: 1, clientHops: 2 });
    const w = watchSource({ tokenTimeoutMs: 300, tokenRetryMs: 1_000 });
    sim.interruptSpot({ action: 'terminate', inMs: 120_000 });
    await until(() => w.last()?.events.some((e) => e.kind === 'Preempt'), 5_000, 'preempt');
    expect(sim.unansweredPuts).toBeGreaterThanOrEqual(1);
    expect(w.source.imdsVersion).toBe(1);
    expect(w.errors).toEqual([]);
    const health = w.source.health();
    expect(health.imds.version).toBe(1);
    expect(health.imds.fallbackReason).toMatch(/timed out/);
    expect(health.consecutiveFailures).toBe(0);
    const warned = w.logger.lines.filter((l) => /IMDSv1/.test(l.msg));
    expect(warned).toHaveLength(1);
    expect(warned[0]!.level).toBe('warn');
    expect(warned[0]!.msg.startsWith('freezeguard: ')).toBe(true);
    // Retried on the side: still one warning, and reads go on meanwhile.
    await until(() => sim.unansweredPuts >= 2, 5_000, 'a second token PUT');
    expect(w.logger.lines.filter((l) => /IMDSv1/.test(l.msg))).toHaveLength(1);
    // The hop limit raised (modify-instance-metadata-options): back on IMDSv2.
    sim.setPutResponseHopLimit(2);
    await until(() => w.source.imdsVersion === 2, 5_000, 'IMDSv2 again');
    expect(w.source.health().imds).toMatchObject({ version: 2, fallbackReason: null });
    const n = sim.requests.length;
    await until(() => sim.requests.length > n + 2, 5_000, 'more reads');
    const last = sim.requests.filter((r) => r.method === 'GET').at(-1)!;
    expect(typeof last.headers['x-aws-ec2-metadata-token']).toBe('string');
  });

  it('where IMDSv2 is required, an unanswered token PUT is reported, never silent', async () => {
    await ec2({ httpTokens: 'required', httpPutResponseHopLimit: 1, clientHops: 2 });
    const w = watchSource({ tokenTimeoutMs: 300 });
    await until(() => w.errors.length >= 1, 5_000, 'an error');
    expect(w.errors[0]!.error.code).toBe('ERR_IMDS_HTTP');
    expect(w.source.health().imds.fallbackReason).toMatch(/timed out/);
  });

  it('answers to a GET with a token carry X-Aws-Ec2-Metadata-Token-Ttl-Seconds, the time it has left', async () => {
    await ec2({ httpTokens: 'required' });
    const put = await request(`${sim.url}/latest/api/token`, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '120' },
    });
    expect(put.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBe('120');
    const token = await put.body.text();
    const got = await request(`${sim.url}/latest/meta-data/instance-id`, {
      headers: { 'X-aws-ec2-metadata-token': token },
    });
    await got.body.text();
    const left = Number(got.headers['x-aws-ec2-metadata-token-ttl-seconds']);
    expect(left).toBeGreaterThanOrEqual(118);
    expect(left).toBeLessThanOrEqual(120);
  });

  it('rebalance recommendations are ignored unless opted in', async () => {
    await ec2();
    const recommendation = sim.recommendRebalance();
    const off = watchSource();
    await until(() => off.docs.length >= 3, 5_000, 'documents');
    expect(off.last().events).toEqual([]);
    expect(sim.requests.some((r) => r.path.includes('rebalance'))).toBe(false);
    const on = watchSource({ rebalance: true });
    await until(() => on.last()?.events.length === 1, 5_000, 'the recommendation');
    expect(on.last().events[0]).toMatchObject({ kind: 'Preempt' });
    // Due at the notice time: an interruption can follow with no further warning.
    expect(on.last().events[0]!.notBefore).toBe(Date.parse(recommendation.noticeTime));
  });

  it('a bad scheduled list is reported but never hides a Spot interruption', async () => {
    await ec2();
    sim.fault({ garbage: true, path: 'events/maintenance/scheduled', times: 1_000 });
    const w = watchSource();
    await until(() => w.errors.length >= 1, 5_000, 'an error');
    expect(w.errors[0]!.error.code).toBe('ERR_BAD_DOCUMENT');
    sim.interruptSpot({ inMs: 120_000 });
    await until(() => w.last()?.events.some((e) => e.kind === 'Preempt'), 5_000, 'preempt');
    expect(w.logger.lines.filter((l) => l.level === 'warn')).toHaveLength(1);
  });

  it.each([
    ['500', { status: 500 }, 'ERR_IMDS_HTTP'],
    ['a reset', { reset: true }, 'ERR_IMDS_UNREACHABLE'],
    ['a body over 1 MiB', { oversized: true }, 'ERR_BODY_TOO_LARGE'],
    ['a timeout', { delayMs: 800 }, 'ERR_IMDS_TIMEOUT'],
  ])('%s: reported, retried with backoff, recovered', async (_n, fault, code) => {
    await ec2();
    sim.fault({ ...fault, times: 4 });
    const w = watchSource({ requestTimeoutMs: 300 });
    await until(() => w.errors.length >= 2, 10_000, 'errors');
    expect(w.errors.every((e) => e.error.code === code)).toBe(true);
    await until(() => w.source.health().consecutiveFailures === 0, 10_000, 'recovery');
    expect(w.logger.lines.filter((l) => l.level === 'warn').length).toBeGreaterThanOrEqual(1);
  });

  it('checks its options', () => {
    expect(() => awsInstanceEvents({ tokenTimeoutMs: 0 })).toThrow(/`tokenTimeoutMs`/);
    expect(() => awsInstanceEvents({ tokenRetryMs: 0 })).toThrow(/`tokenRetryMs`/);
    expect(() => awsInstanceEvents({ tokenTtlSeconds: 0 })).toThrow(/`tokenTtlSeconds`/);
    expect(() => awsInstanceEvents({ tokenTtlSeconds: 21_601 })).toThrow(/`tokenTtlSeconds`/);
    expect(() => awsInstanceEvents({ pollIntervalMs: 100 })).toThrow(/`pollIntervalMs`/);
  });
});

describe('a guard against the EC2 emulator', { timeout: 20_000 }, () => {
  it.each([
    ['moved to history', {}],
    ['left under scheduled as completed', { keepFinishedInScheduled: true }],
  ])(
    'a completed system-maintenance (%s) resumes as done, not cancelled; a canceled one is cancelled',
    async (_n, options) => {
      await ec2(options);
      const guard = createGuard({
        source: awsInstanceEvents({ endpoint: sim.url, pollIntervalMs: 200, maxBackoffMs: 1_000 }),
        resourceName: ID,
        drainDelayMs: 100,
        leadTimeMs: 60_000,
      });
      stops.push(() => guard.stop());
      const resumed: { cancelled: boolean }[] = [];
      guard.on('resumed', (r) => resumed.push({ cancelled: r.cancelled }));
      await guard.start();
      const done = sim.scheduleEvent({ code: 'system-maintenance', notBeforeInMs: 30_000 });
      await until(() => guard.state === 'ready', 5_000, 'ready');
      sim.completeEvent(done.EventId);
      await until(() => resumed.length === 1, 5_000, 'resumed');
      await until(() => guard.state === 'idle', 5_000, 'idle');
      const dropped = sim.scheduleEvent({ code: 'system-maintenance', notBeforeInMs: 30_000 });
      await until(() => guard.state === 'ready', 5_000, 'ready again');
      sim.cancelEvent(dropped.EventId);
      await until(() => resumed.length === 2, 5_000, 'cancelled');
      expect(resumed).toEqual([{ cancelled: false }, { cancelled: true }]);
    },
  );
});
