// Small helpers shared by the benchmarks.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freePort, httpStatus, stopProcessGroup } from '@freezeguard/simulator/process';
import { until, wait } from '@freezeguard/test-utils';

export { freePort, until, wait };

/** `--check`: the shortest run that still exercises every stage; a stage failure fails the run. */
export const check = process.argv.includes('--check');
export const quick = check || process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
/** Iterations: `full` normally, `short` with --quick, `tiny` with --check. */
export const pick = (full, short, tiny = short) => (check ? tiny : quick ? short : full);

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

const started = new Set();

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
  const handle = {
    proc,
    async stop() {
      started.delete(handle);
      await stopProcessGroup(proc);
    },
  };
  started.add(handle);
  return handle;
}

/** Stops every process `startNode` started and nobody stopped (a stage that failed midway). */
export async function stopStarted() {
  await Promise.all([...started].map((p) => p.stop()));
}

/** CPU seconds (user+system, from /proc/<pid>/stat) and RSS bytes of a process. */
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

/** The load average, as `uptime` prints it: figures of a shared machine need it beside them. */
export const loadAverage = () =>
  readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/**
 * Loads `url` for `seconds` with `connections` keep-alive connections and returns the
 * number of requests answered: wrk pinned to CPU 0 when installed (it takes far less CPU
 * than a Node load generator on a 2-core machine), else autocannon. Asynchronous, so the
 * emulators living in this process keep answering.
 */
export async function load(url, seconds, connections, autocannon) {
  if (onPath('wrk')) {
    const pin = onPath('taskset') ? ['taskset', '-c', '0'] : [];
    const [cmd, ...args] = [...pin, 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, url];
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 10) * 1000);
    const code = await new Promise((r) => child.once('close', r));
    clearTimeout(killer);
    const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? Number.NaN);
    const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1];
    if (code !== 0 || !Number.isFinite(requests) || errors)
      throw new Error(`wrk against ${url} failed (exit ${code}): ${out.trim().split('\n').at(-1)}`);
    return requests;
  }
  const res = await autocannon({ url, connections, duration: seconds });
  if (res.non2xx > 0 || res.errors > 0)
    throw new Error(`autocannon against ${url}: ${res.non2xx} non-2xx, ${res.errors} errors`);
  return res.requests.total;
}
