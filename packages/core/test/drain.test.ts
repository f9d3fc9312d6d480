import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BALANCER_PRESETS,
  balancerFromEnv,
  balancerTimings,
  resolveBalancer,
  tooShortNotices,
} from '../src/drain/balancer.js';
import { DrainMonitor } from '../src/drain/confirm.js';
import { logStartNotes } from '../src/guard/drain.js';

/*
 * Generated sequences of probes (several probers, each at its own interval, some going
 * silent), ordinary requests and in-flight counts, with a drain beginning at some point.
 * After every step:
 *
 *   D1  confirmed => every prober that probed within the window received its last
 *       `threshold` answers failing, all of them after the drain began;
 *   D2  confirmed => nothing in flight and no request for the quiet period (at least
 *       200 ms, at most `quietMs`);
 *   D3  no prober within the window => `unprobed` (the fixed delay applies), never confirmed;
 *   D4  once requests stop and every prober keeps probing, confirmed within
 *       threshold × its interval + quietMs of the last request or drain start;
 *   D5  confirmed => the previous look found it settled too, with no arrival since (a
 *       stalled event loop runs timers before it reads sockets).
 */

const SEED = 0xd2a1;
const RUNS = 1000;
const THRESHOLD = 2;
const INTERVAL = 1_000;
const QUIET = 500;

type Step =
  | { kind: 'probe'; prober: number; wait: number }
  | { kind: 'request'; wait: number }
  | { kind: 'inflight'; n: number; wait: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('probe' as const),
      prober: fc.integer({ min: 0, max: 3 }),
      wait: fc.integer({ min: 0, max: 1_500 }),
    }),
    weight: 5,
  },
  fc.record({ kind: fc.constant('request' as const), wait: fc.integer({ min: 0, max: 800 }) }),
  fc.record({
    kind: fc.constant('inflight' as const),
    n: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 })),
    wait: fc.integer({ min: 0, max: 300 }),
  }),
);

let sequences = 0;
let checked = 0;
let confirmations = 0;
let eventual = 0;

afterAll(() => {
  process.stdout.write(
    `drain model: ${sequences} sequences, ${checked} checked steps, ${confirmations} confirmed steps, ${eventual} drains confirmed once traffic stopped (seed ${SEED})\n`,
  );
});

describe('DrainMonitor (generated sequences)', () => {
  it('confirms only what the balancers and the traffic show, and always eventually', () => {
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 0, max: 59 }),
        (steps, beginAt) => {
          sequences++;
          const m = new DrainMonitor({
            unhealthyThreshold: THRESHOLD,
            intervalMs: INTERVAL,
            quietMs: QUIET,
          });
          let now = 1_000_000;
          let began: number | null = null;
          let inFlight = 0;
          let lastRequest = -Infinity;
          let arrivals = 0;
          let prev: { state: string; arrivals: number } | null = null;
          const answers = new Map<number, { t: number; healthy: boolean }[]>();
          const windowOf = (list: { t: number }[]) => {
            const n = list.length;
            const gap = n >= 2 ? list[n - 1]!.t - list[n - 2]!.t : 0;
            return Math.max(30_000, 3 * INTERVAL, Math.min(3 * gap, 10 * INTERVAL));
          };
          steps.forEach((s, i) => {
            if (i === beginAt) {
              began = now;
              m.begin(now);
            }
            now += s.wait;
            if (s.kind === 'probe') {
              const healthy = began === null;
              m.probe(`p${s.prober}`, healthy, now);
              const list = answers.get(s.prober) ?? [];
              list.push({ t: now, healthy });
              answers.set(s.prober, list);
            } else if (s.kind === 'request') {
              if (began !== null) m.request(now);
              lastRequest = now;
              arrivals++;
            } else inFlight = s.n;
            const v = m.verdict(now, inFlight);
            const before = prev;
            prev = { state: v.state, arrivals };
            checked++;
            if (began === null) {
              expect(v.state).toBe('serving');
              return;
            }
            const recent = [...answers.values()].filter(
              (l) => now - l[l.length - 1]!.t <= windowOf(l),
            );
            if (recent.length === 0) expect(v.state).toBe('unprobed'); // D3
            if (v.state !== 'confirmed') return;
            confirmations++;
            for (const list of recent) {
              const tail = list.slice(-THRESHOLD);
              expect(tail.length).toBe(THRESHOLD); // D1
              for (const a of tail) {
                expect(a.healthy).toBe(false);
                expect(a.t).toBeGreaterThanOrEqual(began);
              }
            }
            // D5: the look before was settled (its only gap: that look) with no arrival since.
            expect(before?.arrivals).toBe(arrivals);
            expect(inFlight).toBe(0); // D2
            expect(now - Math.max(lastRequest, began)).toBeGreaterThanOrEqual(Math.min(QUIET, 200));
          });
          if (began === null) return;
          // D4: traffic stops, every prober still in the window keeps probing.
          const live = [...answers.keys()].filter((k) => {
            const l = answers.get(k)!;
            return now - l[l.length - 1]!.t <= windowOf(l);
          });
          if (live.length === 0) return;
          inFlight = 0;
          const start = now;
          for (let k = 1; k <= THRESHOLD + 1; k++) {
            now = start + k * INTERVAL;
            for (const p of live) m.probe(`p${p}`, false, now);
          }
          now += QUIET;
          m.verdict(now, 0);
          expect(m.verdict(now + 50, 0).state).toBe('confirmed');
          eventual++;
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  });

  it('says what is missing', () => {
    const m = new DrainMonitor({ unhealthyThreshold: 3, intervalMs: 10_000, quietMs: 1000 });
    m.probe('10.0.0.4 kube-probe /health/ready', true, 0);
    m.begin(100);
    m.probe('10.0.0.4 kube-probe /health/ready', false, 10_000);
    m.request(10_500);
    const v = m.verdict(10_600, 2);
    expect(m.verdict(10_700, 2).state).toBe('pending');
    expect(v).toEqual({
      state: 'pending',
      missing: [
        'prober 10.0.0.4 kube-probe /health/ready has received 1 of 3 failing answers',
        '2 request(s) in flight',
        'the last request arrived 100 ms ago (quiet period 1000 ms)',
      ],
    });
    m.end();
    expect(m.verdict(10_700, 0)).toEqual({ state: 'serving' });
  });

  it('forgets a prober that went silent (after 30 s at least), and a healthy answer resets the count', () => {
    const m = new DrainMonitor({ unhealthyThreshold: 1, intervalMs: 500, quietMs: 0 });
    m.probe('a', true, 0);
    m.probe('a', true, 500);
    m.begin(600);
    expect(m.verdict(1000, 0).state).toBe('pending');
    // A congested instance reads probes seconds apart: still a prober 29 s on.
    expect(m.verdict(29_000, 0).state).toBe('pending');
    expect(m.verdict(30_501, 0).state).toBe('unprobed');
    m.probe('a', false, 31_000);
    expect(m.verdict(31_000, 0).state).toBe('pending');
    expect(m.verdict(31_050, 0).state).toBe('confirmed');
    m.probe('a', true, 31_100);
    expect(m.verdict(31_100, 0).state).toBe('pending');
  });
});

describe('balancer presets', () => {
  it('resolves presets and checks hand-made profiles, naming the option', () => {
    expect(resolveBalancer('kubernetes')).toEqual({ intervalMs: 10_000, unhealthyThreshold: 3 });
    expect(resolveBalancer({ intervalMs: 8000, unhealthyThreshold: 3 })).toEqual({
      intervalMs: 8000,
      unhealthyThreshold: 3,
    });
    expect(() => resolveBalancer('nginx' as never)).toThrow(/lb: unknown balancer preset "nginx"/);
    expect(() => resolveBalancer('toString' as never)).toThrow(/unknown balancer preset/);
    expect(() => resolveBalancer({ intervalMs: 0, unhealthyThreshold: 1 })).toThrow(/lb: must be/);
    expect(() =>
      resolveBalancer({ intervalMs: 5000, unhealthyThreshold: 1.5 }, 'FREEZEGUARD_LB'),
    ).toThrow(/FREEZEGUARD_LB: must be/);
  });

  it('derives a drain cap and a lead time that fit the balancer, and flags notices too short', () => {
    const rows = Object.entries(BALANCER_PRESETS).map(([name, p]) => ({
      name,
      ...p,
      ...balancerTimings(p),
      tooShort: tooShortNotices(p).join(', '),
    }));
    for (const r of rows) {
      expect(r.drainDelayMs).toBeGreaterThan(r.intervalMs * r.unhealthyThreshold);
      expect(r.leadTimeMs).toBeGreaterThanOrEqual(r.drainDelayMs + 30_000);
    }
    expect(balancerTimings(resolveBalancer('azure-lb'))).toEqual({
      detectionMs: 10_000,
      drainDelayMs: 12_000,
      leadTimeMs: 60_000,
    });
    expect(tooShortNotices(resolveBalancer('azure-lb'))).toEqual([]);
    expect(tooShortNotices(resolveBalancer('aws-alb'))).toEqual([
      'Azure Preempt (Spot eviction)',
      'GCE preemption',
    ]);
  });
});

describe('the quiet period follows the traffic', () => {
  it('is five mean gaps under steady traffic, at least 200 ms, at most quietMs', () => {
    const m = new DrainMonitor({ unhealthyThreshold: 1, intervalMs: 500, quietMs: 1000 });
    expect(m.quietMs()).toBe(1000);
    m.begin(0);
    for (let t = 10; t <= 1000; t += 20) m.request(t);
    expect(m.quietMs()).toBe(200);
    const slow = new DrainMonitor({ unhealthyThreshold: 1, intervalMs: 500, quietMs: 1000 });
    slow.begin(0);
    for (let t = 100; t <= 2000; t += 100) slow.request(t);
    expect(slow.quietMs()).toBe(500);
    for (let t = 2500; t <= 10_000; t += 500) slow.request(t);
    expect(slow.quietMs()).toBe(1000);
  });
});

describe('FREEZEGUARD_LB', () => {
  it('takes a preset or <intervalMs>x<threshold>, and names the variable when wrong', () => {
    expect(balancerFromEnv(undefined)).toBeUndefined();
    expect(balancerFromEnv(' ')).toBeUndefined();
    expect(balancerFromEnv('gcp-lb')).toEqual({ intervalMs: 5000, unhealthyThreshold: 2 });
    expect(balancerFromEnv('8000x3')).toEqual({ intervalMs: 8000, unhealthyThreshold: 3 });
    expect(() => balancerFromEnv('8000x0')).toThrow(/FREEZEGUARD_LB: must be/);
    expect(() => balancerFromEnv('haproxy')).toThrow(/FREEZEGUARD_LB: unknown balancer preset/);
  });
});

describe('the start warning of a balancer slower than the notice', () => {
  it('names the notices the balancer cannot drain in time, for this source only', () => {
    const lines: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn: (_o: unknown, msg?: string) => lines.push(msg ?? ''),
      error() {},
    };
    const o = {
      approve: 'never' as const,
      balancer: resolveBalancer('aws-alb'),
      balancerGiven: true,
    };
    logStartNotes(logger, o, { kind: 'azure-imds' }, 'vm-1');
    logStartNotes(logger, o, { kind: 'ec2-imds' }, 'vm-1');
    logStartNotes(logger, { ...o, balancerGiven: false }, { kind: 'azure-imds' }, 'vm-1');
    expect(lines).toEqual([
      'freezeguard: the balancer needs up to 90 s to take this instance out, longer than the notice of Azure Preempt (Spot eviction): those cannot be drained in time',
    ]);
  });
});
