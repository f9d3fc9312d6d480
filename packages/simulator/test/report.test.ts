import { describe, expect, it } from 'vitest';
import { type DrillReport, drillDetail, renderDrillReport } from '../src/index.js';

const base: DrillReport = {
  passed: false,
  verdict: 'FAIL: health did not fail before the freeze <script>alert(1)</script>',
  drainedBeforeFreeze: false,
  drainLeadMs: null,
  outOfRotationMs: 5300,
  recoveredAfterMs: 40,
  approved: false,
  freezeMs: 5000,
  probes: 3,
  timeline: [],
};

describe('renderDrillReport', () => {
  it('escapes what it prints and draws only the phases that happened', () => {
    const detail = drillDetail({
      phases: { announcedAt: 1000, readyAt: null },
      noticeMs: 4000,
      drainingAt: null,
      stopAt: 5000,
      contAt: 10_000,
      probes: [
        { t: 4000, ok: true, status: 200, doneAt: 4003 },
        { t: 5100, ok: false, status: 'timeout', doneAt: 6100 },
        { t: 10_020, ok: true, status: 200, doneAt: 10_040 },
      ],
      load: null,
      measuredPauseMs: null,
    });
    const html = renderDrillReport({ ...base, detail });
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('class="verdict fail"');
    expect([...html.matchAll(/data-phase="([a-z]+)"/g)].map((m) => m[1])).toEqual([
      'announced',
      'frozen',
      'resumed',
    ]);
    expect(detail).toMatchObject({ notBeforeAt: 5000, healthyAt: 10_020, endAt: 10_020 });
    expect(html).toContain('exposeStatus: true');
    expect(html).not.toContain('requests / 100 ms');
  });

  it('renders a report without a timeline', () => {
    const html = renderDrillReport(base);
    expect(html).toContain('No timeline recorded.');
    expect(html).not.toContain('id="timeline"');
  });
});
