// The drain must hold for balancers slower than the one we configure in the other e2e
// tests. HAProxy probes at three profiles — Azure Load Balancer's defaults (every 5 s,
// out after 1 failure), a slow one (8 s × 3, like Kubernetes' 10 s × 3) and a fast one
// (500 ms × 2) — while the guard runs on its DEFAULT timing options under steady load.
// The instance is frozen (SIGSTOP of its process group) for 4 s as soon as it approves.
// The guard must approve only once this balancer let go, whatever its timing.
import { type Simulator, startSimulator } from '@freezeguard/simulator';
import autocannon from 'autocannon';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type App, type Haproxy, startApp, startHaproxy, stopAll } from '../helpers/processes.js';
import { printTable } from '../helpers/report.js';

const FREEZE_MS = 4000;
const RATE = 50;
// Long enough that nothing is compressed and the slowest profile (up to 32 s to let go)
// is out before NotBefore; shorter than the default 60 s lead time, so preparing starts
// at once.
const NOTICE_MS = 50_000;

const PROFILES = [
  { name: 'azure-lb (5 s × 1)', inter: 5000, fall: 1, rise: 1 },
  { name: '8 s × 3', inter: 8000, fall: 3, rise: 3 },
  { name: '500 ms × 2', inter: 500, fall: 2, rise: 2 },
] as const;

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
  await stopAll();
});

const rows: Record<string, Record<string, string | number>> = {};
afterAll(() => {
  printTable(
    `Balancer profiles: HAProxy at three probe timings, default guard options, ${RATE} req/s, frozen ${FREEZE_MS / 1000} s at approval (SIGSTOP)`,
    rows,
  );
});

/** Polls HAProxy's stats socket; records when s0 (the instance under test) went DOWN and UP. */
function watchRotation(lb: Haproxy) {
  const changes: { t: number; status: string }[] = [];
  let last = '';
  let on = true;
  const loop = (async () => {
    while (on) {
      const s0 = (await lb.servers().catch(() => [])).find((s) => s.name === 's0');
      const status = s0?.status.startsWith('DOWN') ? 'DOWN' : s0 ? 'UP' : last;
      if (status !== last) {
        changes.push({ t: performance.now(), status });
        last = status;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return {
    downAt: (after: number) => changes.find((c) => c.status === 'DOWN' && c.t >= after)?.t,
    upAt: (after: number) => changes.find((c) => c.status === 'UP' && c.t >= after)?.t,
    async stop() {
      on = false;
      await loop;
    },
  };
}

const stopGroup = (app: App, signal: 'SIGSTOP' | 'SIGCONT') => process.kill(-app.proc.pid!, signal);

async function run(profile: (typeof PROFILES)[number], guarded: boolean) {
  const sim: Simulator = await startSimulator({ resourceName: 'vm-a' });
  closers.push(() => sim.close());
  const env = {
    FREEZEGUARD_IMDS_ENDPOINT: sim.url,
    FREEZEGUARD_RESOURCE_NAME: 'vm-a',
    ...(guarded ? {} : { FREEZEGUARD_DISABLED: '1' }),
  };
  const a = await startApp('express-api', env, 'A');
  const twin = await startApp('express-api', { FREEZEGUARD_DISABLED: '1' }, 'twin');
  const lb = await startHaproxy([a, twin], {
    stats: true,
    probe: { inter: `${profile.inter}ms`, fall: profile.fall, rise: profile.rise },
    serverTimeout: '3s',
  });
  closers.push(() => lb.stop());
  // Let the first checks of a slow profile pass: both backends UP before the load.
  const deadline = Date.now() + 3 * profile.inter + 5000;
  while ((await lb.servers()).some((s) => s.status !== 'UP')) {
    if (Date.now() > deadline) throw new Error('HAProxy never saw both backends UP');
    await new Promise((r) => setTimeout(r, 100));
  }
  const rotation = watchRotation(lb);
  // Guarded: until well after it is back in rotation. Unguarded: the freeze 2 s in shows
  // the damage at once.
  const loadS = guarded
    ? Math.ceil((profile.inter * (profile.fall + profile.rise + 1) + FREEZE_MS + 3000) / 1000)
    : Math.ceil((2000 + FREEZE_MS + 4000) / 1000);
  const load = autocannon({
    url: `${lb.url}/api/items`,
    connections: 20,
    overallRate: RATE,
    duration: loadS,
    timeout: 2,
  });
  await new Promise((r) => setTimeout(r, 1000));
  const scheduledAt = performance.now();
  const event = sim.schedule({
    type: 'Freeze',
    notBeforeInMs: NOTICE_MS,
    durationInSeconds: FREEZE_MS / 1000,
    autoStart: false,
  });
  // Guarded: freeze at approval. Unguarded (it never approves): freeze 2 s after the
  // notice, long before its balancer could have noticed anything.
  const approved = await new Promise<boolean>((resolve) => {
    const onApproved = () => {
      clearTimeout(timer);
      sim.off('approved', onApproved);
      resolve(true);
    };
    const timer = setTimeout(
      () => {
        sim.off('approved', onApproved);
        resolve(false);
      },
      guarded ? NOTICE_MS - 2000 : 2000,
    );
    sim.on('approved', onApproved);
  });
  const frozenAt = performance.now();
  sim.start(event.EventId);
  stopGroup(a, 'SIGSTOP');
  await new Promise((r) => setTimeout(r, FREEZE_MS));
  stopGroup(a, 'SIGCONT');
  const result = await load;
  sim.complete(event.EventId);
  await rotation.stop();
  const downAt = rotation.downAt(scheduledAt);
  const upAt = downAt === undefined ? undefined : rotation.upAt(downAt);
  return { result, approved, scheduledAt, frozenAt, downAt, upAt };
}

describe('the drain waits for the balancer, whatever its probe timing (default options)', () => {
  for (const profile of PROFILES) {
    it(`HAProxy ${profile.name}: guarded 0 failed requests, out of rotation ≤ detection + freeze + 1 s; unguarded fails`, async () => {
      const g = await run(profile, true);
      await stopAll();
      while (closers.length) await closers.pop()!();
      const u = await run(profile, false);
      const detectionMs = profile.inter * profile.fall;
      const outMs = g.downAt !== undefined && g.upAt !== undefined ? g.upAt - g.downAt : null;
      for (const [name, r] of [
        ['guarded', g],
        ['unguarded', u],
      ] as const) {
        rows[`${profile.name} ${name}`] = {
          requests: r.result.requests.total,
          '2xx': r.result['2xx'],
          'non-2xx': r.result.non2xx,
          errors: r.result.errors,
          timeouts: r.result.timeouts,
          'approved after': r.approved
            ? `${((r.frozenAt - r.scheduledAt) / 1000).toFixed(2)} s`
            : 'never',
          'balancer let go after':
            r.downAt === undefined ? '' : `${((r.downAt - r.scheduledAt) / 1000).toFixed(2)} s`,
          'out of rotation':
            name === 'guarded' && outMs !== null
              ? `${(outMs / 1000).toFixed(2)} s (bound ${((detectionMs + FREEZE_MS + 1000) / 1000).toFixed(1)} s)`
              : '',
        };
      }
      expect(g.approved).toBe(true);
      // Approved only after the balancer took the instance out.
      expect(g.downAt).toBeDefined();
      expect(g.frozenAt).toBeGreaterThan(g.downAt!);
      expect({
        non2xx: g.result.non2xx,
        errors: g.result.errors,
        timeouts: g.result.timeouts,
      }).toEqual({ non2xx: 0, errors: 0, timeouts: 0 });
      expect(outMs).not.toBeNull();
      expect(outMs!).toBeLessThanOrEqual(detectionMs + FREEZE_MS + 1000);
      // The harness sees the damage the guard prevents.
      expect(u.result.non2xx + u.result.errors + u.result.timeouts).toBeGreaterThan(0);
    });
  }
});
