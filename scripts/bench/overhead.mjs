// HTTP overhead: CPU time of the server process per request, bare app vs guarded app.
import { fileURLToPath } from 'node:url';
import { startSimulator } from '@freezeguard/simulator';
import autocannon from 'autocannon';
import {
  check,
  freePort,
  load,
  loadAverage,
  median,
  onPath,
  pick,
  procStats,
  round,
  startNode,
  waitFor,
} from './lib.mjs';

const fixtures = fileURLToPath(new URL('./fixtures.mjs', import.meta.url));
const CONNECTIONS = 32;

/**
 * For Express 5 and Fastify 5: three servers pinned to CPU 1 (bare, guarded, a second
 * bare), loaded in turn by wrk on CPU 0, bare / guarded / bare, which bare server comes
 * first alternating every round. A server's CPU per request is its own user+system time
 * (/proc/<pid>/stat) over the requests it answered: what the adapter costs, whatever the
 * client does. Each round compares the guarded run with the geometric mean of the two
 * bare runs around it, which cancels the drift of a shared machine; the two bare servers
 * against each other are the noise floor. The guards poll a metadata emulator, as on a VM.
 */
export async function overhead(row, report) {
  const sim = await startSimulator({ resourceName: 'vm-1' });
  const env = { FREEZEGUARD_IMDS_ENDPOINT: sim.url, FREEZEGUARD_RESOURCE_NAME: 'vm-1' };
  const rounds = pick(21, 5, 2);
  const seconds = pick(2, 2, 1);
  const tool = onPath('wrk') ? `wrk -t1 -c${CONNECTIONS}` : `autocannon -c${CONNECTIONS}`;
  const table = [];
  const loadBefore = loadAverage();
  try {
    for (const fw of ['express', 'fastify']) {
      const kinds = { bare: `${fw}-bare`, guarded: `${fw}-guarded`, control: `${fw}-bare` };
      const servers = {};
      for (const [name, kind] of Object.entries(kinds)) {
        const port = await freePort();
        servers[name] = {
          url: `http://127.0.0.1:${port}/`,
          node: startNode(fixtures, { ...env, PORT: String(port) }, [kind], 1),
        };
      }
      const cpu = { bare: [], guarded: [], control: [] };
      const guardedRatios = [];
      const floorRatios = [];
      const measure = async (name) => {
        const { url, node } = servers[name];
        const before = procStats(node.proc.pid).cpuSeconds;
        const requests = await load(url, seconds, CONNECTIONS, autocannon);
        const used = procStats(node.proc.pid).cpuSeconds - before;
        return (used * 1e6) / requests;
      };
      try {
        for (const { url } of Object.values(servers)) {
          await waitFor(url);
          await waitFor(`${url}health/ready`);
        }
        // Warm-up: the JIT settles before anything is counted.
        for (const name of Object.keys(servers)) await measure(name);
        for (let r = 0; r < rounds; r++) {
          const order =
            r % 2 === 0 ? ['bare', 'guarded', 'control'] : ['control', 'guarded', 'bare'];
          const sample = {};
          for (const name of order) sample[name] = await measure(name);
          for (const name of order) cpu[name].push(sample[name]);
          // Guarded against the two bare runs around it; the two bare ones against each other.
          guardedRatios.push(sample.guarded / Math.sqrt(sample.bare * sample.control));
          floorRatios.push(sample.control / sample.bare);
          process.stderr.write(
            `    round ${r + 1}: µs/req ${order.map((n) => `${n} ${round(sample[n], 1)}`).join(', ')}\n`,
          );
        }
      } finally {
        for (const { node } of Object.values(servers)) await node.stop();
      }
      const polls = sim.requests.length;
      const result = {
        framework: fw === 'express' ? 'Express 5' : 'Fastify 5',
        bare: round(median([...cpu.bare, ...cpu.control]), 1),
        guarded: round(median(cpu.guarded), 1),
        ratio: round(median(guardedRatios), 3),
        floor: round(median(floorRatios), 3),
      };
      if (![result.bare, result.guarded, result.ratio].every(Number.isFinite))
        throw new Error(`${fw}: no figures (${JSON.stringify(result)})`);
      if (polls === 0) throw new Error(`${fw}: the guard never polled its metadata emulator`);
      table.push(result);
      row(
        fw,
        `server CPU µs per request bare / guarded (medians of ${rounds} rounds of ${seconds} s, ${tool})`,
        `${result.bare} / ${result.guarded}`,
      );
      row(
        fw,
        `server CPU per request guarded / bare, median of rounds (noise floor bare / bare ${result.floor})`,
        result.ratio,
        '≤ 1.02',
      );
    }
  } finally {
    await sim.close();
  }
  report(
    [
      `CPU per request of the server process (${rounds} alternating rounds of ${seconds} s bare / guarded / bare, ${tool}, server on CPU 1, load generator on CPU 0; load average ${loadBefore} before, ${loadAverage()} after${check ? '; --check: too short to mean anything' : ''}):`,
      '',
      '| framework | bare µs/req | guarded µs/req | guarded / bare (median of rounds) | noise floor (bare / bare) |',
      '| --- | --- | --- | --- | --- |',
      ...table.map(
        (t) => `| ${t.framework} | ${t.bare} | ${t.guarded} | ${t.ratio} | ${t.floor} |`,
      ),
    ].join('\n'),
  );
}
