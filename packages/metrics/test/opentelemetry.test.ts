import type { CycleInfo } from '@freezeguard/core';
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { OPENTELEMETRY_METRIC_NAMES, openTelemetryMetrics } from '../src/index.js';
import { makeGuard, runCycle } from './scenario.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A meter provider whose readings the test pulls on demand through the in-memory exporter. */
function sdk() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // The interval never elapses in a test: readings are taken with forceFlush().
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  cleanups.push(() => provider.shutdown());
  return {
    provider,
    async read(): Promise<Map<string, MetricData>> {
      exporter.reset();
      await reader.forceFlush();
      const out = new Map<string, MetricData>();
      for (const rm of exporter.getMetrics())
        for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.descriptor.name, m);
      return out;
    },
  };
}

type Attrs = Record<string, string>;
function point<T>(data: Map<string, MetricData>, name: string, attrs: Attrs = {}): DataPoint<T> {
  const m = data.get(name);
  if (!m) throw new Error(`${name} not exported`);
  const found = (m.dataPoints as DataPoint<T>[]).filter(
    (p) =>
      Object.keys(p.attributes).length === Object.keys(attrs).length &&
      Object.entries(attrs).every(([k, v]) => p.attributes[k] === v),
  );
  if (found.length !== 1)
    throw new Error(`${name} ${JSON.stringify(attrs)}: ${found.length} points`);
  return found[0]!;
}
const num = (data: Map<string, MetricData>, name: string, attrs: Attrs = {}) =>
  point<number>(data, name, attrs).value;
const histogram = (data: Map<string, MetricData>, name: string, attrs: Attrs = {}) =>
  point<Histogram>(data, name, attrs).value;
/** Cumulative count of observations ≤ `le`. */
function upTo(h: Histogram, le: number): number {
  const i = h.buckets.boundaries.indexOf(le);
  if (i < 0) throw new Error(`no bucket boundary ${le}`);
  return h.buckets.counts.slice(0, i + 1).reduce((a, b) => a + b, 0);
}

const n = OPENTELEMETRY_METRIC_NAMES;

describe('openTelemetryMetrics', () => {
  it('records a full cycle: values, attributes and histogram counts', async () => {
    const { provider, read } = sdk();
    const s = makeGuard();
    cleanups.push(() => s.guard.stop());
    const handle = openTelemetryMetrics(s.guard, { meter: provider.getMeter('test') });
    cleanups.push(() => handle.close());
    const cycles: CycleInfo[] = [];
    s.guard.on('cycle', (c) => cycles.push(c));

    let atReady = new Map<string, MetricData>();
    await runCycle(s, async () => {
      atReady = await read();
    });
    expect(num(atReady, n.state, { state: 'ready' })).toBe(1);
    expect(num(atReady, n.state, { state: 'idle' })).toBe(0);
    expect(num(atReady, n.ready)).toBe(0);
    expect(num(atReady, n.approvals)).toBe(1);

    const data = await read();
    expect(data.get(n.state)!.dataPoints).toHaveLength(7);
    expect(num(data, n.state, { state: 'idle' })).toBe(1);
    expect(data.get(n.state)!.dataPoints.reduce((sum, p) => sum + (p.value as number), 0)).toBe(1);
    expect(num(data, n.ready)).toBe(1);

    expect(num(data, n.events, { event_type: 'Freeze', relevant: 'true' })).toBe(1);
    expect(num(data, n.events, { event_type: 'Reboot', relevant: 'false' })).toBe(1);
    expect(data.get(n.events)!.dataPoints).toHaveLength(2);
    expect(num(data, n.cycles, { outcome: 'resumed' })).toBe(1);
    expect(data.get(n.cycles)!.dataPoints).toHaveLength(1);

    const out = histogram(data, n.outOfRotation);
    expect(data.get(n.outOfRotation)!.descriptor.unit).toBe('s');
    expect(out.count).toBe(1);
    expect(out.sum).toBeCloseTo(cycles[0]!.outOfRotationMs / 1000, 6);
    expect(upTo(out, 5)).toBe(0);
    expect(upTo(out, 600)).toBe(1);

    const pause = histogram(data, n.pause, { signal: 'tick-gap' });
    expect(pause.count).toBe(1);
    expect(pause.sum).toBeGreaterThan(4.8);
    expect(upTo(pause, 3)).toBe(0);
    expect(upTo(pause, 10)).toBe(1);

    const lb = histogram(data, n.participantDuration, {
      participant: 'lb',
      step: 'prepare',
      outcome: 'ok',
    });
    expect(lb.count).toBe(1);
    expect(lb.sum).toBe(2);
    expect(upTo(lb, 1)).toBe(0);
    expect(upTo(lb, 2.5)).toBe(1);
    const q = { participant: 'queue' };
    expect(
      histogram(data, n.participantDuration, { ...q, step: 'resume', outcome: 'error' }).count,
    ).toBe(1);
    expect(
      histogram(data, n.participantDuration, { ...q, step: 'prepare', outcome: 'ok' }).count,
    ).toBe(1);

    expect(num(data, n.sourceErrors, { code: 'ERR_IMDS_HTTP' })).toBe(1);
    expect(num(data, n.approvals)).toBe(1);

    // After close() nothing more is recorded.
    handle.close();
    await s.clock.advance(1_000);
    (s.source as unknown as { fail(c: string): void }).fail('ERR_IMDS_TIMEOUT');
    const after = await read();
    expect(after.get(n.sourceErrors)!.dataPoints).toHaveLength(1);
    expect(num(after, n.sourceErrors, { code: 'ERR_IMDS_HTTP' })).toBe(1);
  });

  it("defaults to the global provider's meter 'freezeguard'", async () => {
    const { provider, read } = sdk();
    expect(metrics.setGlobalMeterProvider(provider)).toBe(true);
    cleanups.push(() => metrics.disable());
    const s = makeGuard();
    const handle = openTelemetryMetrics(s.guard);
    cleanups.push(() => handle.close());
    await s.guard.start();
    cleanups.push(() => s.guard.stop());
    const data = await read();
    expect(num(data, n.state, { state: 'idle' })).toBe(1);
  });

  it('rejects a meter that is not one, naming the option', () => {
    const s = makeGuard();
    expect(() => openTelemetryMetrics(s.guard, { meter: {} as never })).toThrow(/`meter`/);
  });
});
