import type { CycleInfo } from '@freezeguard/core';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { PROMETHEUS_METRIC_NAMES, prometheusMetrics } from '../src/index.js';
import { makeGuard, runCycle } from './scenario.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type Json = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
type Labels = Record<string, string | number>;
interface Series {
  value: number;
  labels: Labels;
  metricName?: string;
}

// Every series of `metric` named `series` (histograms: `_bucket`, `_sum`, `_count`)
// whose labels include `labels`.
function find(json: Json, metric: string, labels: Labels = {}, series = metric): Series[] {
  const m = json.find((x) => x.name === metric);
  if (!m) throw new Error(`${metric} not registered`);
  return (m.values as Series[]).filter(
    (v) =>
      (v.metricName ?? metric) === series &&
      Object.entries(labels).every(([k, l]) => v.labels[k] === l),
  );
}
/** The value of the one series with exactly these labels. */
function value(json: Json, metric: string, labels: Labels = {}): number {
  const found = find(json, metric, labels).filter(
    (v) => Object.keys(v.labels).length === Object.keys(labels).length,
  );
  if (found.length !== 1)
    throw new Error(`${metric} ${JSON.stringify(labels)}: ${found.length} series`);
  return found[0]!.value;
}
function bucket(json: Json, metric: string, le: number, labels: Labels = {}): number {
  const found = find(json, metric, { ...labels, le }, `${metric}_bucket`);
  if (found.length !== 1) throw new Error(`${metric} le=${le}: ${found.length} series`);
  return found[0]!.value;
}
function hist(json: Json, metric: string, suffix: 'sum' | 'count', labels: Labels = {}): number {
  return find(json, metric, labels, `${metric}_${suffix}`).reduce((sum, v) => sum + v.value, 0);
}

describe('prometheusMetrics', () => {
  it('records a full cycle: values, labels and histogram counts', async () => {
    const s = makeGuard();
    cleanups.push(() => s.guard.stop());
    const registry = new Registry();
    const handle = prometheusMetrics(s.guard, { registry });
    cleanups.push(() => handle.close());
    const cycles: CycleInfo[] = [];
    s.guard.on('cycle', (c) => cycles.push(c));

    let atReady: Json = [];
    await runCycle(s, async () => {
      atReady = await registry.getMetricsAsJSON();
    });
    // While prepared: state=ready, not serving.
    expect(value(atReady, 'freezeguard_state', { state: 'ready' })).toBe(1);
    expect(value(atReady, 'freezeguard_state', { state: 'idle' })).toBe(0);
    expect(value(atReady, 'freezeguard_ready')).toBe(0);
    expect(value(atReady, 'freezeguard_approvals_total')).toBe(1);

    const json = await registry.getMetricsAsJSON();
    expect(value(json, 'freezeguard_state', { state: 'idle' })).toBe(1);
    expect(
      find(json, 'freezeguard_state')
        .map((v) => v.labels.state)
        .sort(),
    ).toEqual(['frozen', 'idle', 'preparing', 'ready', 'resuming', 'scheduled', 'shutting-down']);
    expect(find(json, 'freezeguard_state').reduce((n, v) => n + v.value, 0)).toBe(1);
    expect(value(json, 'freezeguard_ready')).toBe(1);

    // Two events, each counted once although listed in three documents.
    expect(
      value(json, 'freezeguard_events_total', { event_type: 'Freeze', relevant: 'true' }),
    ).toBe(1);
    expect(
      value(json, 'freezeguard_events_total', { event_type: 'Reboot', relevant: 'false' }),
    ).toBe(1);
    expect(find(json, 'freezeguard_events_total')).toHaveLength(2);

    expect(value(json, 'freezeguard_cycles_total', { outcome: 'resumed' })).toBe(1);
    for (const outcome of ['cancelled', 'failsafe', 'shutdown'])
      expect(value(json, 'freezeguard_cycles_total', { outcome })).toBe(0);

    // Out of rotation: prepare began at NotBefore − 60 s, ready again after the 5 s stop.
    expect(cycles).toHaveLength(1);
    const outSeconds = cycles[0]!.outOfRotationMs / 1000;
    expect(outSeconds).toBeGreaterThanOrEqual(10); // 5 s drain delay + 5 s stop at least
    expect(hist(json, 'freezeguard_out_of_rotation_seconds', 'count')).toBe(1);
    expect(hist(json, 'freezeguard_out_of_rotation_seconds', 'sum')).toBeCloseTo(outSeconds, 6);
    expect(bucket(json, 'freezeguard_out_of_rotation_seconds', 5)).toBe(0);
    expect(bucket(json, 'freezeguard_out_of_rotation_seconds', 600)).toBe(1);

    // The 5 s process stop, seen as a tick gap.
    expect(hist(json, 'freezeguard_pause_seconds', 'count', { signal: 'tick-gap' })).toBe(1);
    expect(hist(json, 'freezeguard_pause_seconds', 'sum', { signal: 'tick-gap' })).toBeGreaterThan(
      4.8,
    );
    expect(bucket(json, 'freezeguard_pause_seconds', 3, { signal: 'tick-gap' })).toBe(0);
    expect(bucket(json, 'freezeguard_pause_seconds', 10, { signal: 'tick-gap' })).toBe(1);

    // Participants: lb prepared in 2 s; queue prepared; queue's resume threw.
    const p = 'freezeguard_participant_duration_seconds';
    const lbPrepare = { participant: 'lb', step: 'prepare', outcome: 'ok' };
    expect(hist(json, p, 'count', lbPrepare)).toBe(1);
    expect(hist(json, p, 'sum', lbPrepare)).toBe(2);
    expect(bucket(json, p, 1, lbPrepare)).toBe(0);
    expect(bucket(json, p, 2.5, lbPrepare)).toBe(1);
    expect(hist(json, p, 'count', { participant: 'queue', step: 'resume', outcome: 'error' })).toBe(
      1,
    );
    expect(hist(json, p, 'count', { participant: 'queue', step: 'prepare', outcome: 'ok' })).toBe(
      1,
    );
    expect(hist(json, p, 'count', { participant: 'queue', step: 'resume', outcome: 'ok' })).toBe(0);

    expect(value(json, 'freezeguard_source_errors_total', { code: 'ERR_IMDS_HTTP' })).toBe(1);
    expect(value(json, 'freezeguard_approvals_total')).toBe(1);

    // The text exposition carries the same, with the fixed names.
    const text = await handle.metrics();
    for (const name of PROMETHEUS_METRIC_NAMES) expect(text).toContain(`# TYPE ${name} `);
    expect(text).toContain('freezeguard_cycles_total{outcome="resumed"} 1');
    expect(handle.contentType).toMatch(/^text\/plain/);
  });

  it('close() unsubscribes and frees the names; a second handle on the same registry is refused until then', async () => {
    const s = makeGuard();
    cleanups.push(() => s.guard.stop());
    const registry = new Registry();
    const handle = prometheusMetrics(s.guard, { registry });
    expect(() => prometheusMetrics(s.guard, { registry })).toThrow(
      expect.objectContaining({
        code: 'ERR_BAD_OPTION',
        message: expect.stringContaining('`registry`'),
      }),
    );
    handle.close();
    expect((await registry.getMetricsAsJSON()).map((m) => m.name)).toEqual([]);
    const again = prometheusMetrics(s.guard, { registry });
    const cycles = registry.getSingleMetric('freezeguard_cycles_total')!;
    again.close();
    await runCycle(s);
    expect(await registry.metrics()).toBe('\n');
    // Detached and unsubscribed: the cycle left the old metric untouched.
    expect((await cycles.get()).values.every((v) => v.value === 0)).toBe(true);
  });

  it('uses the global registry by default', async () => {
    const { register } = await import('prom-client');
    const s = makeGuard();
    const handle = prometheusMetrics(s.guard);
    cleanups.push(() => handle.close());
    expect(handle.registry).toBe(register);
    expect(register.getSingleMetric('freezeguard_ready')).toBeDefined();
  });

  it('rejects a registry that is not one, naming the option', () => {
    const s = makeGuard();
    expect(() => prometheusMetrics(s.guard, { registry: {} as Registry })).toThrow(/`registry`/);
  });
});
