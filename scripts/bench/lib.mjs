// Small helpers shared by the benchmarks.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort, httpStatus, stopProcessGroup } from '@freezeguard/simulator/process';
import { wait } from '@freezeguard/test-utils';

export { freePort, wait };

export const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';

export function percentile(values, p) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)];
}

export const median = (values) => percentile(values, 50);
export const round = (n, digits = 1) => (Number.isFinite(n) ? Number(n.toFixed(digits)) : n);

/** `httpStatus` with the bench's positional arguments. */
export const status = (url, timeoutMs = 1000, agent = false) =>
  httpStatus(url, { timeoutMs, agent });

export async function waitFor(url, code = 200, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while ((await status(url)) !== code) {
    if (Date.now() > deadline) throw new Error(`${url} not ${code} within ${timeoutMs} ms`);
    await wait(50);
  }
}

export const onPath = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

/** Starts a node script as its own process group (pinned to `cpu` when given); `stop()` ends it. */
export function startNode(script, env = {}, args = [], cpu = null) {
  const pin = cpu !== null && onPath('taskset');
  const [cmd, ...rest] = pin
    ? ['taskset', '-c', String(cpu), process.execPath]
    : [process.execPath];
  const proc = spawn(cmd, [...rest, script, ...args], {
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  proc.stdout.resume();
  return {
    proc,
    stop: () => stopProcessGroup(proc),
  };
}

/** CPU seconds (user+system) and RSS bytes of a process, from /proc. */
export function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  return { cpuSeconds: ticks / 100, rssBytes: rssKb * 1024 };
}

export function machine() {
  const cpu =
    /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  const cores = readFileSync('/proc/cpuinfo', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('processor')).length;
  return `${cores} × ${cpu.trim()}, Node ${process.version}`;
}

/**
 * Requests/s of `url` for `seconds`: wrk (pinned to CPU 0) when installed, since it takes
 * far less CPU than a Node load generator on a 2-core machine; else autocannon.
 */
export async function requestsPerSecond(url, seconds, autocannon) {
  if (onPath('wrk')) {
    const pin = onPath('taskset') ? ['taskset', '-c', '0'] : [];
    const [cmd, ...args] = [...pin, 'wrk', '-t1', '-c50', `-d${seconds}s`, url];
    const out = spawnSync(cmd, args, { encoding: 'utf8' }).stdout;
    return Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  }
  const res = await autocannon({ url, connections: 50, duration: seconds });
  return res.requests.average;
}
