import { resolveBalancer } from '@freezeguard/core';
import { delay, freePort, stopProcessGroup } from '../process.js';
import { rehearseFreeze } from '../rehearsal.js';
import { startSimulator } from '../simulator.js';
import { type DrillApp, launchApp, waitHealthy } from './app.js';
import { measuredPause, startProber, watchPhases } from './collect.js';
import { balancerLetGoAt, drillDetail, judgeBalancer, judgeDrill } from './judge.js';
import { type LoadBucket, startLoad } from './load.js';
import type { DrillOptions, DrillReport, TimelineEntry } from './types.js';

/** Options checked, defaults merged: the one place they are. */
function settle(options: DrillOptions) {
  const lb = options.lb === undefined ? null : resolveBalancer(options.lb, 'lb');
  const settled = {
    lb,
    freezeMs: options.freezeMs ?? 5000,
    noticeMs: options.noticeMs ?? 20_000,
    interval: options.probeIntervalMs ?? lb?.intervalMs ?? 250,
    recoverWithinMs: options.recoverWithinMs ?? 5000,
    resourceName: options.resourceName ?? 'drill-vm',
    cloud: options.cloud ?? 'azure',
    startTimeoutMs: options.startTimeoutMs ?? 30_000,
  };
  if (options.command.length === 0) throw new TypeError('runDrill(): `command` is empty');
  if (!(settled.freezeMs > 0))
    throw new TypeError(`Invalid option \`freezeMs\`: must be > 0 (got ${settled.freezeMs})`);
  if (!(settled.noticeMs >= 0))
    throw new TypeError(`Invalid option \`noticeMs\`: must be ≥ 0 (got ${settled.noticeMs})`);
  return settled;
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
  const { lb, freezeMs, noticeMs, interval, recoverWithinMs, resourceName, cloud } =
    settle(options);
  const say = options.onProgress ?? (() => {});
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0);
  const timeline: TimelineEntry[] = [];
  const mark = (what: string) => {
    const entry = { t: now(), what };
    timeline.push(entry);
    say(`${(entry.t / 1000).toFixed(2).padStart(7)} s  ${what}`);
  };
  const signal = options.signal;

  const port = await freePort();
  const healthUrl = options.healthUrl ?? `http://127.0.0.1:${port}/health/ready`;
  const sim = await startSimulator({ cloud, resourceName });
  let app: DrillApp | null = null;
  let prober: ReturnType<typeof startProber> | null = null;
  let load: { stop(): Promise<LoadBucket[]> } | null = null;
  const phases = watchPhases(sim, now);
  try {
    mark(`simulator at ${sim.url} (resource ${resourceName})`);
    app = launchApp(
      options.command,
      {
        cwd: options.cwd,
        env: {
          ...process.env,
          PORT: String(port),
          ...options.env,
          FREEZEGUARD_IMDS_ENDPOINT: sim.url,
          FREEZEGUARD_RESOURCE_NAME: resourceName,
          FREEZEGUARD_CLOUD: cloud,
          ...(lb ? { FREEZEGUARD_LB: `${lb.intervalMs}x${lb.unhealthyThreshold}` } : {}),
        },
      },
      say,
    );
    mark(`started app: ${options.command.join(' ')} (pid ${app.child.pid}, PORT=${port})`);
    await waitHealthy(app, healthUrl, options.startTimeoutMs ?? 30_000, signal);
    mark(`app healthy at ${healthUrl}`);

    if (options.load)
      load = startLoad({
        ...options.load,
        url: new URL(options.load.path ?? '/', healthUrl).href,
        now,
      });
    prober = startProber(healthUrl, interval, now, mark);
    const { probes } = prober;

    const rehearsal = await rehearseFreeze({
      sim,
      pid: app.child.pid!,
      freezeMs,
      noticeMs,
      mark,
      ...(signal ? { signal } : {}),
    });
    const stopAt = Math.round(rehearsal.stopAt - t0);
    const contAt = Math.round(rehearsal.continueAt - t0);

    // Probe on until healthy again (or long past the limit), and a little after.
    const recoverDeadline = contAt + Math.max(recoverWithinMs * 3, 15_000);
    while (now() < recoverDeadline && !probes.some((p) => p.t >= contAt && p.ok))
      await delay(interval, signal);
    await delay(Math.min(1000, interval * 4), signal);
    await prober.stop();
    const loadBuckets = (await load?.stop()) ?? null;
    const measuredPauseMs = await measuredPause(healthUrl);

    const seen = phases.stop();
    let judged = judgeDrill(probes, { stopAt, contAt }, recoverWithinMs);
    const letGoAt = lb ? balancerLetGoAt(probes, lb.unhealthyThreshold, stopAt) : null;
    if (lb) {
      if (letGoAt !== null) mark(`the balancer let go (${lb.unhealthyThreshold} failing probes)`);
      judged = judgeBalancer(judged, { letGoAt, approvedAt: seen.readyAt, stopAt });
    }
    return {
      passed: judged.passed,
      verdict: judged.verdict,
      drainedBeforeFreeze: judged.drainedBeforeFreeze,
      drainLeadMs: judged.drainLeadMs,
      outOfRotationMs: judged.outOfRotationMs,
      recoveredAfterMs: judged.recoveredAfterMs,
      ...(lb ? { balancer: { ...lb, letGoAt } } : {}),
      approved: rehearsal.approved,
      freezeMs,
      probes: probes.length,
      timeline,
      detail: drillDetail({
        phases: seen,
        noticeMs,
        drainingAt: judged.drainingAt,
        stopAt,
        contAt,
        probes,
        load: loadBuckets,
        measuredPauseMs,
      }),
    };
  } finally {
    await prober?.stop().catch(() => {});
    await load?.stop();
    phases.stop();
    // SIGCONT first: the app may be stopped still, when the drill was aborted mid-freeze.
    if (app) await stopProcessGroup(app.child, { graceMs: 5000 });
    await sim.close();
  }
}
