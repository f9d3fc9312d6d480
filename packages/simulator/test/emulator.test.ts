import { parseScheduledEventsDocument } from '@freezeguard/core/adapter';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runScenario, SCENARIO_NAMES, type Simulator, startSimulator } from '../src/index.js';

let sim: Simulator;
beforeEach(async () => {
  sim = await startSimulator({ resourceName: 'vm-1', rateLimitPerSecond: 0 });
});
afterEach(() => sim.close());

const path = '/metadata/scheduledevents?api-version=2020-07-01';
async function get(p = path, headers: Record<string, string> = { Metadata: 'true' }) {
  const res = await request(`${sim.url}${p}`, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, text, headers: res.headers, json: () => JSON.parse(text) };
}
async function post(body: string, p = path) {
  const res = await request(`${sim.url}${p}`, {
    method: 'POST',
    body,
    headers: { Metadata: 'true', 'Content-Type': 'application/json' },
  });
  return { status: res.statusCode, text: await res.body.text() };
}

describe('IMDS Scheduled Events contract', () => {
  it('serves an empty document the parser accepts', async () => {
    const res = await get();
    expect(res.status).toBe(200);
    const doc = parseScheduledEventsDocument(res.text);
    expect(doc.events).toEqual([]);
  });

  it('400 without Metadata: true, and with X-Forwarded-For', async () => {
    expect((await get(path, {})).status).toBe(400);
    expect((await get(path, { Metadata: 'false' })).status).toBe(400);
    const proxied = await get(path, { Metadata: 'true', 'X-Forwarded-For': '10.0.0.1' });
    expect(proxied.status).toBe(400);
  });

  it('400 with a missing or unknown api-version, listing newest-versions', async () => {
    for (const p of [
      '/metadata/scheduledevents',
      '/metadata/scheduledevents?api-version=1999-01-01',
    ]) {
      const res = await get(p);
      expect(res.status).toBe(400);
      expect(res.json()['newest-versions']).toContain('2020-07-01');
    }
  });

  it('serves the fields each api-version has, RFC 1123 NotBefore, "" once Started', async () => {
    const ev = sim.schedule({
      type: 'Freeze',
      notBeforeInMs: 60_000,
      durationInSeconds: 5,
      autoStart: false,
    });
    const newest = (await get()).json().Events[0];
    expect(newest).toMatchObject({
      EventId: ev.EventId,
      EventType: 'Freeze',
      EventStatus: 'Scheduled',
      Resources: ['vm-1'],
      DurationInSeconds: 5,
      EventSource: 'Platform',
    });
    expect(newest.NotBefore).toMatch(
      /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/,
    );
    const old = (await get('/metadata/scheduledevents?api-version=2017-11-01')).json().Events[0];
    expect(old).not.toHaveProperty('Description');
    expect(old).not.toHaveProperty('DurationInSeconds');
    const mid = (await get('/metadata/scheduledevents?api-version=2019-08-01')).json().Events[0];
    expect(mid).toHaveProperty('Description');
    expect(mid).not.toHaveProperty('DurationInSeconds');
    sim.start(ev.EventId);
    expect((await get()).json().Events[0]).toMatchObject({ EventStatus: 'Started', NotBefore: '' });
  });

  it('DocumentIncarnation increases on every change', async () => {
    const seen = [(await get()).json().DocumentIncarnation];
    const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 60_000, autoStart: false });
    seen.push((await get()).json().DocumentIncarnation);
    sim.start(ev.EventId);
    seen.push((await get()).json().DocumentIncarnation);
    sim.complete(ev.EventId);
    seen.push((await get()).json().DocumentIncarnation);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(4);
  });

  it('ETag and If-None-Match → 304 until the document changes', async () => {
    const first = await get();
    const etag = first.headers.etag as string;
    expect(etag).toBeTruthy();
    expect((await get(path, { Metadata: 'true', 'If-None-Match': etag })).status).toBe(304);
    sim.schedule({ type: 'Reboot', autoStart: false });
    expect((await get(path, { Metadata: 'true', 'If-None-Match': etag })).status).toBe(200);
  });

  it('StartRequests: 200, twice too; the event becomes Started; 400 on a malformed body', async () => {
    const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 60_000, autoStart: false });
    const body = JSON.stringify({ StartRequests: [{ EventId: ev.EventId }] });
    expect((await post(body)).status).toBe(200);
    expect((await post(body)).status).toBe(200);
    expect(sim.approvals.map((a) => a.eventId)).toEqual([ev.EventId, ev.EventId]);
    expect(sim.events()[0]!.EventStatus).toBe('Started');
    for (const bad of ['{', '{}', '{"StartRequests":[]}', '{"StartRequests":[{"EventId":5}]}']) {
      expect((await post(bad)).status).toBe(400);
    }
  });

  it('compute/name answers the resource name as text', async () => {
    const res = await get('/metadata/instance/compute/name?api-version=2021-02-01&format=text');
    expect(res).toMatchObject({ status: 200, text: 'vm-1' });
  });

  it('events start at NotBefore on their own and can complete after a duration', async () => {
    const seen: string[] = [];
    sim.on('started', (e) => seen.push(`started ${e.EventId}`));
    sim.on('completed', (e) => seen.push(`completed ${e.EventId}`));
    const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 100, completeAfterMs: 200 });
    expect(sim.events()[0]!.EventStatus).toBe('Scheduled');
    // NotBefore is rounded up to a whole second, as IMDS serves it
    await new Promise((r) => setTimeout(r, ev.notBefore - Date.now() + 50));
    expect(sim.events()[0]!.EventStatus).toBe('Started');
    await new Promise((r) => setTimeout(r, 250));
    expect(sim.events()).toEqual([]);
    expect(seen).toEqual([`started ${ev.EventId}`, `completed ${ev.EventId}`]);
  });

  it('the control API schedules, starts, completes and reports', async () => {
    const created = await request(`${sim.url}/__freezeguard/events`, {
      method: 'POST',
      body: JSON.stringify({ type: 'Freeze', notBeforeInMs: 30_000, autoStart: false }),
    });
    expect(created.statusCode).toBe(201);
    const ev = (await created.body.json()) as { EventId: string };
    await (
      await request(`${sim.url}/__freezeguard/events/${ev.EventId}/start`, { method: 'POST' })
    ).body.text();
    const state = (await (await request(`${sim.url}/__freezeguard/state`)).body.json()) as {
      document: { Events: { EventStatus: string }[] };
    };
    expect(state.document.Events[0]!.EventStatus).toBe('Started');
    const done = await request(`${sim.url}/__freezeguard/events/${ev.EventId}/complete`, {
      method: 'POST',
    });
    expect(done.statusCode).toBe(200);
    await done.body.text();
    expect(sim.events()).toEqual([]);
    const missing = await request(`${sim.url}/__freezeguard/events/nope/start`, { method: 'POST' });
    expect(missing.statusCode).toBe(400);
    await missing.body.text();
  });

  it('binds to 127.0.0.1 by default', () => {
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it.each(SCENARIO_NAMES)('scenario %s schedules events for this VM', (name) => {
    const events = runScenario(sim, name, { timeScale: 60 });
    expect(events.length).toBeGreaterThan(0);
    expect(events[0]!.Resources).toContain('vm-1');
  });

  it('scenario notices are the real minimums divided by the time scale', () => {
    const before = Date.now();
    const [ev] = runScenario(sim, 'preempt', { timeScale: 1 });
    expect(ev!.notBefore - before).toBeGreaterThanOrEqual(30_000);
    expect(ev!.notBefore - before).toBeLessThanOrEqual(31_000);
  });
});

describe('rate limit', () => {
  it('answers 429 above 5 requests/s', async () => {
    const limited = await startSimulator({ rateLimitPerSecond: 5 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const res = await request(`${limited.url}${path}`, { headers: { Metadata: 'true' } });
        await res.body.text();
        statuses.push(res.statusCode);
      }
      expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
      expect(statuses.slice(5)).toEqual([429, 429, 429]);
    } finally {
      await limited.close();
    }
  });
});
