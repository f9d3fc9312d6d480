// The core's own figures: reaction to an event, idle cost, probe latency on entering a drain.
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import { azureScheduledEvents, createGuard, silentLogger } from '@freezeguard/core';
import { MemorySource } from '@freezeguard/core/testing';
import { guardExpress } from '@freezeguard/express';
import { startSimulator } from '@freezeguard/simulator';
import express from 'express';
import {
  median,
  percentile,
  pick,
  procStats,
  quick,
  round,
  startNode,
  status,
  until,
  wait,
} from './lib.mjs';

const fixtures = fileURLToPath(new URL('./fixtures.mjs', import.meta.url));

// Reaction: an event appears in the simulator → the first traffic-phase prepare call.
export async function reaction(row) {
  const sim = await startSimulator({ resourceName: 'vm-1' });
  const guard = createGuard({
    source: azureScheduledEvents({ endpoint: sim.url, pollIntervalMs: 1000 }),
    resourceName: 'vm-1',
    resumeWhen: 'removed',
    drainDelayMs: 0,
    logger: silentLogger,
  });
  let prepared = null;
  guard.use({ name: 'probe', phase: 'traffic', prepare: () => (prepared = performance.now()) });
  const samples = [];
  try {
    await guard.start();
    await wait(1500);
    for (let i = 0; i < pick(30, 8, 3); i++) {
      prepared = null;
      await wait(Math.random() * 1000); // arrive at a random point of the poll cycle
      const t0 = performance.now();
      const ev = sim.schedule({ type: 'Freeze', notBeforeInMs: 1000, autoStart: false });
      await until(() => prepared !== null, 5000, `the prepare for event ${i + 1}`);
      samples.push(prepared - t0);
      sim.complete(ev.EventId);
      await until(() => guard.state === 'idle', 5000, `idle after event ${i + 1}`);
    }
  } finally {
    await guard.stop();
    await sim.close();
  }
  row('core', 'event in IMDS → first traffic prepare, p50', `${round(median(samples))} ms`);
  row(
    'core',
    'event in IMDS → first traffic prepare, p99',
    `${round(percentile(samples, 99))} ms`,
    '≤ poll interval (1000) + 50 ms',
  );
}

// Idle cost: a guard polling IMDS at 1 Hz against a bare Node process, side by side.
export async function idle(row) {
  const sim = await startSimulator({ resourceName: 'vm-1' });
  const env = { FREEZEGUARD_IMDS_ENDPOINT: sim.url, FREEZEGUARD_RESOURCE_NAME: 'vm-1' };
  const bare = startNode(fixtures, env, ['bare-idle']);
  const guarded = startNode(fixtures, env, ['guard-idle']);
  const seconds = pick(60, 20, 5);
  const rss = { bare: [], guarded: [] };
  let cpu;
  try {
    await wait(quick ? 2000 : 5000);
    const b0 = procStats(bare.proc.pid);
    const g0 = procStats(guarded.proc.pid);
    const t0 = performance.now();
    // RSS moves with every GC: sample it each second and compare medians.
    for (let i = 0; i < seconds; i++) {
      await wait(1000);
      rss.bare.push(procStats(bare.proc.pid).rssBytes);
      rss.guarded.push(procStats(guarded.proc.pid).rssBytes);
    }
    const elapsed = (performance.now() - t0) / 1000;
    const b1 = procStats(bare.proc.pid);
    const g1 = procStats(guarded.proc.pid);
    cpu = (s0, s1) => ((s1.cpuSeconds - s0.cpuSeconds) / elapsed) * 100;
    cpu = { bare: cpu(b0, b1), guarded: cpu(g0, g1) };
  } finally {
    await bare.stop();
    await guarded.stop();
    await sim.close();
  }
  const polls = sim.requests.length;
  if (polls === 0) throw new Error('the idle guard never polled its metadata emulator');
  row(
    'core',
    `idle guard CPU over ${seconds} s (bare node: ${round(cpu.bare, 2)} %)`,
    `${round(cpu.guarded, 2)} % of one core`,
    '< 0.5 %',
  );
  row(
    'core',
    `idle guard RSS − bare node RSS (medians of ${seconds} samples; bare ${round(median(rss.bare) / 1048576, 1)} MiB)`,
    `${round((median(rss.guarded) - median(rss.bare)) / 1048576, 1)} MiB`,
    '< 8 MiB',
  );
  row('core', 'IMDS requests during the idle run', `${polls}`, '≈ 1/s');
}

// Guard enters `preparing` → the first 503 from /health/ready (in process, keep-alive probing).
export async function probe(row) {
  const source = new MemorySource({ resourceName: 'vm-1' });
  const guard = createGuard({
    source,
    resourceName: 'vm-1',
    drainDelayMs: 0,
    resumeWhen: 'removed',
    logger: silentLogger,
  });
  const app = express();
  app.use(guardExpress(guard));
  const server = await new Promise((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  const url = `http://127.0.0.1:${server.address().port}/health/ready`;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const samples = [];
  let n = 1;
  try {
    await guard.start();
    for (let i = 0; i < pick(100, 20, 10); i++) {
      let enteredAt = null;
      const off = guard.on('state', (s) => {
        if (s === 'preparing') enteredAt = performance.now();
      });
      let got503 = null;
      const deadline = Date.now() + 5000;
      const loop = (async () => {
        while (got503 === null && Date.now() < deadline) {
          const code = await status(url, 1000, agent);
          if (code === 503 && enteredAt !== null) got503 = performance.now();
        }
      })();
      await wait(Math.random() * 5);
      // Each maintenance is announced Scheduled first, as IMDS does: an id first seen
      // Started after one just ran would be taken for a new id of that one (no new drain).
      source.publish({
        DocumentIncarnation: ++n,
        Events: [
          {
            EventId: `E${i}`,
            EventType: 'Freeze',
            EventStatus: 'Scheduled',
            Resources: ['vm-1'],
            NotBefore: '',
            ResourceType: 'VirtualMachine',
          },
        ],
      });
      await loop;
      off();
      if (got503 === null)
        throw new Error(
          `event ${i + 1}: /ready did not answer 503 within 5 s (state ${guard.state})`,
        );
      samples.push(got503 - enteredAt);
      source.publish({ DocumentIncarnation: ++n, Events: [] });
      await until(() => guard.state === 'idle', 5000, `idle after event ${i + 1}`);
    }
  } finally {
    await guard.stop();
    agent.destroy();
    server.close();
    server.closeAllConnections();
  }
  row(
    'http',
    'guard enters preparing → /ready answers 503, p50',
    `${round(median(samples), 2)} ms`,
  );
  row(
    'http',
    'guard enters preparing → /ready answers 503, p99',
    `${round(percentile(samples, 99), 2)} ms`,
    '< 5 ms',
  );
}
