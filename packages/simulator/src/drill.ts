import { type ChildProcess, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { rehearseCloudFreeze } from './clouds.js';
import { type LoadBucket, startLoad } from './load.js';
import { delay, freezeProcess, signalTree } from './process-freeze.js';
import { type DrillDetail, drillDetail, measuredPause, watchPhases } from './report.js';
import { type SimCloud, type Simulator, startSimulator } from './simulator.js';

/** Options of {@link runDrill}. */
export interface DrillOptions {
  /** The app to start: program and arguments. */
  readonly command: readonly string[];
  /** How long the app is stopped (SIGSTOP). Default 5000. */
  readonly freezeMs?: number;
  /** NotBefore this far after scheduling. Default 20000. */
  readonly noticeMs?: number;
  /** The app's readiness URL. Default `http://127.0.0.1:$PORT/health/ready`, PORT chosen by the drill. */
  readonly healthUrl?: string;
  /**
   * The cloud to rehearse: `azure` (a Freeze), `gcp` (a live migration) or `aws` (a
   * system-maintenance event). The app gets `FREEZEGUARD_CLOUD`. Default `azure`.
   */
  readonly cloud?: SimCloud;
  /** The VM name the emulator and the app agree on. Default `drill-vm`. */
  readonly resourceName?: string;
  /** Probe interval, like a load balancer's. Default 250. */
  readonly probeIntervalMs?: number;
  /** Wait this long for the app to answer 200 first. Default 30000. */
  readonly startTimeoutMs?: number;
  /** The app must be healthy again this soon after SIGCONT to pass. Default 5000. */
  readonly recoverWithinMs?: number;
  /** Extra environment for the app. */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Progress lines (timeline entries, app output). */
  readonly onProgress?: (line: string) => void;
  readonly signal?: AbortSignal;
  /** Send this steady load at the app during the drill (for the report), to `path` (default `/`). */
  readonly load?: { readonly rps: number; readonly path?: string };
}

/** One moment of the drill, ms since it began. */
export interface TimelineEntry {
  readonly t: number;
  readonly what: string;
}

/** What a drill found. */
export interface DrillReport {
  readonly passed: boolean;
  readonly verdict: string;
  /** Health was failing continuously from before SIGSTOP. */
  readonly drainedBeforeFreeze: boolean;
  /** How long before SIGSTOP health started failing, ms (null if it did not). */
  readonly drainLeadMs: number | null;
  /** First failing probe to first good probe after the freeze, ms. */
  readonly outOfRotationMs: number | null;
  /** SIGCONT to the first good probe, ms (null if never). */
  readonly recoveredAfterMs: number | null;
  readonly approved: boolean;
  readonly freezeMs: number;
  readonly probes: number;
  readonly timeline: readonly TimelineEntry[];
  /** What the HTML report (`renderDrillReport`) draws. */
  readonly detail?: DrillDetail;
}

interface Probe {
  readonly t: number;
  readonly ok: boolean;
  readonly status: number | string;
  /** When the answer (or its failure) came, for the report. */
  readonly doneAt?: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function probe(url: string, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    // A new connection per probe, as a load balancer's health check does.
    const req = httpRequest(url, { method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve('timeout');
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    req.end();
  });
}

// Exported for its test.
export { delay } from './process-freeze.js';

function killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  signalTree(child.pid, sig);
}

/** Options of {@link rehearseFreeze}. */
export interface RehearseFreezeOptions {
  /** The emulator the app polls. */
  readonly sim: Simulator;
  /** The app's pid; when it leads a process group (spawned detached) the whole group is frozen. */
  readonly pid: number;
  readonly freezeMs: number;
  /** NotBefore this far after scheduling. */
  readonly noticeMs: number;
  /** Resources of the event. Default `[sim.resourceName]`. */
  readonly resources?: readonly string[];
  /** Progress, as timeline entries. */
  readonly mark?: (what: string) => void;
  readonly onStop?: () => void;
  readonly onContinue?: () => void;
  readonly signal?: AbortSignal;
}

/** When things happened, in `performance.now()` milliseconds. */
export interface Rehearsal {
  readonly eventId: string;
  readonly approved: boolean;
  readonly stopAt: number;
  readonly continueAt: number;
}

/**
 * Plays one Freeze on a running app the way Azure does: schedules it, waits for the app's
 * approval or NotBefore, marks it Started, stops the process (group) with SIGSTOP for
 * `freezeMs`, resumes it with SIGCONT and removes the event. The process is always
 * continued, even when aborted.
 *
 * @example
 * ```ts
 * const r = await rehearseFreeze({ sim, pid: app.pid, freezeMs: 5000, noticeMs: 10_000 });
 * ```
 */
export async function rehearseFreeze(options: RehearseFreezeOptions): Promise<Rehearsal> {
  const { sim, pid, freezeMs, noticeMs } = options;
  const mark = options.mark ?? (() => {});
  const seconds = Math.ceil(freezeMs / 1000);
  const event = sim.schedule({
    type: 'Freeze',
    notBeforeInMs: noticeMs,
    durationInSeconds: seconds,
    autoStart: false,
    ...(options.resources ? { resources: options.resources } : {}),
  });
  mark(
    `Freeze ${event.EventId} scheduled, NotBefore in ${(noticeMs / 1000).toFixed(1)} s, ${seconds} s long`,
  );
  let approved = false;
  await new Promise<void>((resolve, reject) => {
    const onApproved = (a: { eventId: string }) => {
      if (a.eventId !== event.EventId) return;
      approved = true;
      mark('the app approved the event (StartRequests)');
      finish();
    };
    const timer = setTimeout(
      () => {
        mark('NotBefore reached');
        finish();
      },
      Math.max(0, event.notBefore - Date.now()),
    );
    const onAbort = () => {
      finish();
      reject(options.signal?.reason);
    };
    function finish() {
      clearTimeout(timer);
      sim.off('approved', onApproved);
      options.signal?.removeEventListener('abort', onAbort);
      resolve();
    }
    sim.on('approved', onApproved);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
  });
  sim.start(event.EventId);
  mark('event Started');
  await delay(250, options.signal);
  const { stopAt, continueAt } = await freezeProcess(pid, freezeMs, options, mark);
  sim.complete(event.EventId);
  mark('event removed from the document');
  return { eventId: event.EventId, approved, stopAt, continueAt };
}

/**
 * Rehearses a Freeze against a real app: starts the emulator and the app (pointed at it
 * through `FREEZEGUARD_IMDS_ENDPOINT`/`FREEZEGUARD_RESOURCE_NAME`), schedules a Freeze,
 * probes health like a load balancer, really stops the app's process group with SIGSTOP
 * for the freeze and SIGCONT after, then judges: drained before the freeze, healthy
 * again soon after. The app is always resumed and stopped at the end.
 *
 * @example
 * ```ts
 * const report = await runDrill({ command: ['node', 'server.js'], freezeMs: 5000, noticeMs: 20000 });
 * console.log(report.verdict);
 * ```
 */
export async function runDrill(options: DrillOptions): Promise<DrillReport> {
  const freezeMs = options.freezeMs ?? 5000;
  const noticeMs = options.noticeMs ?? 20_000;
  const interval = options.probeIntervalMs ?? 250;
  const recoverWithinMs = options.recoverWithinMs ?? 5000;
  const resourceName = options.resourceName ?? 'drill-vm';
  if (options.command.length === 0) throw new TypeError('runDrill(): `command` is empty');
  if (!(freezeMs > 0))
    throw new TypeError(`Invalid option \`freezeMs\`: must be > 0 (got ${freezeMs})`);
  if (!(noticeMs >= 0))
    throw new TypeError(`Invalid option \`noticeMs\`: must be ≥ 0 (got ${noticeMs})`);
  const say = options.onProgress ?? (() => {});
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0);
  const timeline: TimelineEntry[] = [];
  const mark = (what: string) => {
    const entry = { t: now(), what };
    timeline.push(entry);
    say(`${(entry.t / 1000).toFixed(2).padStart(7)} s  ${what}`);
  };

  const port = await freePort();
  const healthUrl = options.healthUrl ?? `http://127.0.0.1:${port}/health/ready`;
  const cloud = options.cloud ?? 'azure';
  const sim = await startSimulator({ cloud, resourceName });
  let child: ChildProcess | null = null;
  let stopped = false;
  const probes: Probe[] = [];
  let probing = false;
  let probeLoop: Promise<void> = Promise.resolve();
  const phases = watchPhases(sim, now);
  let load: { stop(): Promise<LoadBucket[]> } | null = null;
  try {
    mark(`simulator at ${sim.url} (resource ${resourceName})`);
    child = spawn(options.command[0]!, options.command.slice(1), {
      cwd: options.cwd,
      env: {
        ...process.env,
        PORT: String(port),
        ...options.env,
        FREEZEGUARD_IMDS_ENDPOINT: sim.url,
        FREEZEGUARD_RESOURCE_NAME: resourceName,
        FREEZEGUARD_CLOUD: cloud,
      },
      // Its own process group, so SIGSTOP reaches the whole tree (npm → node …).
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const app = child;
    for (const stream of [app.stdout!, app.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => say(`            app │ ${line}`));
    }
    const exited = new Promise<string>((resolve) =>
      app.once('exit', (code, sig) => resolve(`exited (${sig ?? code})`)),
    );
    const spawnError = new Promise<string>((resolve) =>
      app.once('error', (err) => resolve(`failed to start: ${err.message}`)),
    );
    mark(`started app: ${options.command.join(' ')} (pid ${app.pid}, PORT=${port})`);

    const deadline = performance.now() + (options.startTimeoutMs ?? 30_000);
    for (;;) {
      const status = await Promise.race([probe(healthUrl, 1000), exited, spawnError]);
      if (status === 200) break;
      if (
        typeof status === 'string' &&
        (status.startsWith('exited') || status.startsWith('failed'))
      ) {
        throw new Error(`the app ${status} before it was healthy`);
      }
      if (performance.now() > deadline) {
        throw new Error(
          `the app did not answer 200 on ${healthUrl} within ${options.startTimeoutMs ?? 30_000} ms (last: ${status})`,
        );
      }
      await delay(200, options.signal);
    }
    mark(`app healthy at ${healthUrl}`);

    probing = true;
    if (options.load)
      load = startLoad({
        ...options.load,
        url: new URL(options.load.path ?? '/', healthUrl).href,
        now,
      });
    probeLoop = (async () => {
      let last: boolean | null = null;
      while (probing) {
        const started = now();
        const status = await probe(healthUrl, Math.max(interval * 4, 1000));
        const ok = status === 200;
        probes.push({ t: started, ok, status, doneAt: now() });
        if (ok !== last) mark(`health → ${status}`);
        last = ok;
        const wait = interval - (now() - started);
        if (wait > 0) await delay(wait);
      }
    })();

    const rehearse = sim.cloud === 'azure' ? rehearseFreeze : rehearseCloudFreeze;
    const rehearsal = await rehearse({
      sim: sim as never,
      pid: app.pid!,
      freezeMs,
      noticeMs,
      mark,
      ...(options.signal ? { signal: options.signal } : {}),
      onStop: () => {
        stopped = true;
      },
      onContinue: () => {
        stopped = false;
      },
    });
    const stopAt = Math.round(rehearsal.stopAt - t0);
    const contAt = Math.round(rehearsal.continueAt - t0);
    const approved = rehearsal.approved;

    const recoverDeadline = contAt + Math.max(recoverWithinMs * 3, 15_000);
    while (now() < recoverDeadline && !probes.some((p) => p.t >= contAt && p.ok))
      await delay(interval, options.signal);
    await delay(Math.min(1000, interval * 4), options.signal);
    probing = false;
    await probeLoop;
    const loadBuckets = (await load?.stop()) ?? null;
    const measuredPauseMs = await measuredPause(healthUrl);

    // Judge from the probes, as a load balancer would see them.
    const before = probes.filter((p) => p.t < stopAt);
    let streakStart: number | null = null;
    for (const p of before) streakStart = p.ok ? null : (streakStart ?? p.t);
    const drained = before.length > 0 && !before.at(-1)!.ok;
    const firstGood = probes.find((p) => p.t >= contAt && p.ok) ?? null;
    const firstBad = drained
      ? streakStart
      : (probes.find((p) => p.t >= stopAt && !p.ok)?.t ?? null);
    const recoveredAfterMs = firstGood ? firstGood.t - contAt : null;
    const recovered = recoveredAfterMs !== null && recoveredAfterMs <= recoverWithinMs;
    const passed = drained && recovered;
    const reasons: string[] = [];
    if (!drained)
      reasons.push(
        'health did not fail before the freeze: the load balancer would have kept sending requests to a frozen app',
      );
    if (!recovered) {
      reasons.push(
        recoveredAfterMs === null
          ? 'health never came back after the freeze'
          : `health came back ${recoveredAfterMs} ms after SIGCONT (limit ${recoverWithinMs} ms)`,
      );
    }
    const report: DrillReport = {
      passed,
      verdict: passed
        ? `PASS: drained ${stopAt - streakStart!} ms before the freeze, healthy ${recoveredAfterMs} ms after it`
        : `FAIL: ${reasons.join('; ')}`,
      drainedBeforeFreeze: drained,
      drainLeadMs: drained ? stopAt - streakStart! : null,
      outOfRotationMs: firstBad !== null && firstGood ? firstGood.t - firstBad : null,
      recoveredAfterMs,
      approved,
      freezeMs,
      probes: probes.length,
      timeline,
      detail: drillDetail({
        phases: phases.stop(),
        noticeMs,
        drainingAt: drained ? streakStart : null,
        stopAt,
        contAt,
        probes,
        load: loadBuckets,
        measuredPauseMs,
      }),
    };
    return report;
  } finally {
    probing = false;
    await probeLoop.catch(() => {});
    await load?.stop();
    phases.stop();
    if (child) {
      const app = child;
      if (stopped || app.exitCode === null) killGroup(app, 'SIGCONT');
      if (app.exitCode === null && app.signalCode === null) {
        const gone = new Promise<void>((resolve) => app.once('exit', () => resolve()));
        killGroup(app, 'SIGTERM');
        const timer = setTimeout(() => killGroup(app, 'SIGKILL'), 5000);
        await gone;
        clearTimeout(timer);
      }
    }
    await sim.close();
  }
}

/**
 * Renders a drill report as the timeline and verdict the CLI prints.
 *
 * @example
 * ```ts
 * console.log(formatDrillReport(await runDrill({ command: ['node', 'app.js'] })));
 * ```
 */
export function formatDrillReport(report: DrillReport): string {
  const fmt = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(2)} s`);
  return [
    '',
    '| measure | value |',
    '| --- | --- |',
    `| drained before the freeze | ${report.drainedBeforeFreeze ? 'yes' : 'no'} |`,
    `| health failing before SIGSTOP | ${fmt(report.drainLeadMs)} |`,
    `| freeze (SIGSTOP) | ${fmt(report.freezeMs)} |`,
    `| out of rotation | ${fmt(report.outOfRotationMs)} |`,
    `| healthy again after SIGCONT | ${fmt(report.recoveredAfterMs)} |`,
    `| app approved the event | ${report.approved ? 'yes' : 'no'} |`,
    `| probes | ${report.probes} |`,
    '',
    report.verdict,
  ].join('\n');
}
