import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGuard, FreezeguardError, type SourceContext } from '@freezeguard/core';
import { FakeClock, MemorySource, recordingLogger } from '@freezeguard/core/testing';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  OPENTELEMETRY_METRIC_NAMES,
  openTelemetryMetrics,
  prometheusMetrics,
} from '../src/index.js';
import { OnceEach } from '../src/observe.js';
import { type WebhookPayload, webhooks } from '../src/webhooks.js';
import { T0 } from './scenario.js';

// Issue 21, items 4 and 6: an EventId is counted once (listed twice in a document, in many
// documents, gone and back), label values from the network are bounded, and
// freezeguard_source_up says when the guard is blind.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

class RelaySource extends MemorySource {
  ctx: SourceContext | null = null;
  override start(context: SourceContext): void {
    this.ctx = context;
    super.start(context);
  }
}

function event(id: string, type = 'Freeze', resources = ['vm-1']) {
  return {
    EventId: id,
    EventType: type,
    EventStatus: 'Scheduled',
    ResourceType: 'VirtualMachine',
    Resources: resources,
    NotBefore: new Date(T0 + 15 * 60_000).toUTCString(),
    DurationInSeconds: 5,
  };
}

function makeGuard() {
  const clock = new FakeClock({ now: T0 });
  const source = new RelaySource({ resourceName: 'vm-1' });
  const guard = createGuard({
    source,
    clock,
    timers: clock,
    logger: recordingLogger(),
    resourceName: 'vm-1',
  });
  cleanups.push(() => guard.stop());
  return { clock, source, guard };
}

/** The same Freeze listed twice in one document, then gone, then back; an unknown type. */
async function repeatedDocuments(s: ReturnType<typeof makeGuard>): Promise<void> {
  const weird = 'Weird<script>'.repeat(20);
  s.source.publish({ DocumentIncarnation: 1, Events: [event('EV-1'), event('EV-1')] });
  await s.clock.flush();
  s.source.publish({ DocumentIncarnation: 2, Events: [event('EV-9', weird, ['vm-2'])] });
  await s.clock.flush();
  s.source.publish({
    DocumentIncarnation: 3,
    Events: [event('EV-1'), event('EV-9', weird, ['vm-2'])],
  });
  await s.clock.flush();
  // A code relayed from another process is not one of ours.
  const relayed = new FreezeguardError('ERR_IMDS_HTTP', 'relayed');
  (relayed as { code: string }).code = 'ERR_FROM_THE_WIRE_12345';
  s.source.ctx?.onError(relayed, 1);
}

describe('OnceEach', () => {
  it('is true once per key and forgets the oldest beyond its bound', () => {
    const once = new OnceEach(2);
    expect([once.first('a'), once.first('a'), once.first('b'), once.first('c')]).toEqual([
      true,
      false,
      true,
      true,
    ]);
    expect(once.first('a')).toBe(true); // forgotten: the bound holds
    expect(once.first('c')).toBe(false);
  });
});

describe('prometheusMetrics: counted once, bounded labels, source_up', () => {
  it('counts each EventId once and maps unknown types and codes to other', async () => {
    const s = makeGuard();
    const registry = new Registry();
    const handle = prometheusMetrics(s.guard, { registry });
    cleanups.push(() => handle.close());
    await s.guard.start();
    await repeatedDocuments(s);
    const text = await handle.metrics();
    expect(text).toContain('freezeguard_events_total{event_type="Freeze",relevant="true"} 1');
    expect(text).toContain('freezeguard_events_total{event_type="other",relevant="false"} 1');
    expect(text).not.toContain('Weird');
    expect(text).toContain('freezeguard_source_errors_total{code="other"} 1');
    expect(text).not.toContain('ERR_FROM_THE_WIRE');
  });

  it('freezeguard_source_up is 1 while the source answers, 0 once it is blind, 1 again after', async () => {
    const s = makeGuard();
    const registry = new Registry();
    const handle = prometheusMetrics(s.guard, { registry });
    cleanups.push(() => handle.close());
    await s.guard.start();
    s.source.publish({ DocumentIncarnation: 1, Events: [] });
    await s.clock.advance(1_000);
    expect(await handle.metrics()).toContain('freezeguard_source_up 1');
    await s.clock.advance(30_000);
    expect(await handle.metrics()).toContain('freezeguard_source_up 0');
    expect(await handle.metrics()).toContain('freezeguard_ready 1');
    s.source.publish({ DocumentIncarnation: 2, Events: [] });
    await s.clock.advance(0);
    expect(await handle.metrics()).toContain('freezeguard_source_up 1');
  });
});

describe('openTelemetryMetrics: counted once, bounded attributes, source.up', () => {
  it('exports the same', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const provider = new MeterProvider({ readers: [reader] });
    cleanups.push(() => provider.shutdown());
    const read = async () => {
      exporter.reset();
      await reader.forceFlush();
      const out = new Map<string, MetricData>();
      for (const rm of exporter.getMetrics())
        for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.descriptor.name, m);
      return out;
    };
    const s = makeGuard();
    const handle = openTelemetryMetrics(s.guard, { meter: provider.getMeter('t') });
    cleanups.push(() => handle.close());
    await s.guard.start();
    await repeatedDocuments(s);
    const n = OPENTELEMETRY_METRIC_NAMES;
    let data = await read();
    const events = data.get(n.events)!.dataPoints.map((p) => [p.attributes, p.value]);
    expect(events).toEqual([
      [{ event_type: 'Freeze', relevant: 'true' }, 1],
      [{ event_type: 'other', relevant: 'false' }, 1],
    ]);
    expect(data.get(n.sourceErrors)!.dataPoints.map((p) => p.attributes.code)).toEqual(['other']);
    expect(data.get(n.sourceUp)!.dataPoints.map((p) => p.value)).toEqual([1]);
    await s.clock.advance(30_000);
    data = await read();
    expect(data.get(n.sourceUp)!.dataPoints.map((p) => p.value)).toEqual([0]);
  });
});

describe('webhooks: announced once per EventId', () => {
  it('a document listing an EventId twice, or listing it again after it left, announces it once', async () => {
    const received: WebhookPayload[] = [];
    const server = createServer((req, res) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (c) => {
        text += c;
      });
      req.on('end', () => {
        received.push(JSON.parse(text));
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const s = makeGuard();
    const hooks = webhooks(s.guard, { url, events: ['announced'] });
    cleanups.push(() => hooks.close());
    await s.guard.start();
    await repeatedDocuments(s);
    await hooks.settled();
    expect(received.map((p) => [p.notification, p.eventIds])).toEqual([['announced', ['EV-1']]]);
  });
});
