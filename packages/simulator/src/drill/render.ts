import { LATE_MS, LOAD_BUCKET_MS } from './load.js';
import type { DrillReport } from './types.js';

/*
 * A drill report rendered for people: the text table the CLI prints, and one
 * self-contained HTML page.
 */

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
    ...balancerLines(report).map(([k, v]) => `| ${k} | ${v} |`),
    `| probes | ${report.probes} |`,
    '',
    report.verdict,
  ].join('\n');
}

/** With `--lb`: the balancer emulated and when it let go, relative to the freeze. */
function balancerLines(report: DrillReport): [string, string][] {
  const b = report.balancer;
  if (!b) return [];
  const frozenAt = report.detail?.frozenAt;
  const letGo =
    b.letGoAt === null
      ? 'never before the freeze'
      : frozenAt === undefined
        ? `${(b.letGoAt / 1000).toFixed(2)} s into the drill`
        : `${((frozenAt - b.letGoAt) / 1000).toFixed(2)} s before the freeze`;
  return [
    ['balancer', `every ${b.intervalMs / 1000} s, out after ${b.unhealthyThreshold} failure(s)`],
    ['balancer let go', letGo],
  ];
}

const esc = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
const sec = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(2)} s`);

/** Phase names in lifecycle order, with their colours. */
export const REPORT_PHASES = [
  { name: 'announced', color: '#9db7d5', label: 'announced' },
  { name: 'draining', color: '#f2b35b', label: 'draining' },
  { name: 'ready', color: '#e6d36a', label: 'ready (prepared)' },
  { name: 'frozen', color: '#5b7fd6', label: 'frozen (SIGSTOP)' },
  { name: 'resumed', color: '#7cc48b', label: 'resumed' },
] as const;

function probeColor(status: number | string): string {
  if (status === 200) return '#2e9d4f';
  if (typeof status === 'number' && status < 600) return '#e08a1e';
  return '#c8372d';
}

/**
 * Renders a drill report as one self-contained HTML page: inline SVG and a few lines of
 * inline script, no external resource, readable offline. The drawing carries `data-*`
 * attributes (phase, start/end ms, ms per pixel) so a browser test can check it.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * writeFileSync('drill.html', renderDrillReport(await runDrill({ command: ['node', 'app.js'] })));
 * ```
 */
export function renderDrillReport(report: DrillReport, title = 'freezeguard drill'): string {
  const d = report.detail;
  const W = 960;
  const left = 150;
  const right = 20;
  const plotW = W - left - right;
  const parts: string[] = [];
  let y = 26;
  let from = 0;
  let to = 1;
  let msPerPx = 1;
  if (d) {
    from = Math.max(0, (d.announcedAt ?? d.probes[0]?.t ?? d.frozenAt) - 1000);
    to = Math.max(d.endAt, d.resumedAt) + 500;
    msPerPx = (to - from) / plotW;
  }
  const x = (t: number) => left + (t - from) / msPerPx;
  const lane = (label: string, h: number, body: string) => {
    parts.push(
      `<text x="${left - 10}" y="${y + h / 2 + 4}" text-anchor="end" class="lane">${esc(label)}</text>`,
      body,
    );
    y += h + 14;
  };

  if (d) {
    // Phase bands.
    const end = d.endAt;
    const frozenEnd = d.resumedAt;
    const bands: { name: string; start: number | null; end: number | null }[] = [
      { name: 'announced', start: d.announcedAt, end: d.drainingAt ?? d.readyAt ?? d.frozenAt },
      { name: 'draining', start: d.drainingAt, end: d.readyAt ?? d.frozenAt },
      { name: 'ready', start: d.readyAt, end: d.frozenAt },
      { name: 'frozen', start: d.frozenAt, end: frozenEnd },
      { name: 'resumed', start: frozenEnd, end },
    ];
    let body = '';
    for (const b of bands) {
      if (b.start === null || b.end === null || b.end <= b.start) continue;
      const phase = REPORT_PHASES.find((p) => p.name === b.name)!;
      const bx = x(b.start);
      const bw = Math.max(1, x(b.end) - bx);
      body +=
        `<g class="phase" data-phase="${b.name}" data-start-ms="${b.start}" data-end-ms="${b.end}">` +
        `<rect x="${bx.toFixed(2)}" y="${y}" width="${bw.toFixed(2)}" height="34" fill="${phase.color}"><title>${esc(phase.label)}: ${sec(b.start)} → ${sec(b.end)} (${sec(b.end - b.start)})</title></rect>` +
        (bw > 54
          ? `<text x="${(bx + bw / 2).toFixed(2)}" y="${y + 21}" text-anchor="middle" class="band">${esc(b.name)}</text>`
          : '') +
        '</g>';
    }
    lane('lifecycle', 34, body);

    // Health answers, drawn when the prober got them; a thin line shows how long it waited.
    body = '';
    const pw = Math.max(2, Math.min(12, 150 / msPerPx));
    for (const p of d.probes) {
      const at = x(p.doneAt);
      if (p.doneAt - p.t > 2 * msPerPx * pw)
        body += `<line class="wait" x1="${x(p.t).toFixed(2)}" x2="${at.toFixed(2)}" y1="${y + 11}" y2="${y + 11}"/>`;
      body += `<rect class="probe" data-t-ms="${p.doneAt}" data-status="${esc(String(p.status))}" x="${(at - pw).toFixed(2)}" y="${y}" width="${pw.toFixed(2)}" height="22" fill="${probeColor(p.status)}"><title>sent ${sec(p.t)}, ${esc(String(p.status))} at ${sec(p.doneAt)}</title></rect>`;
    }
    lane('health (prober)', 22, body);

    // Requests per 100 ms.
    if (d.load && d.load.length > 0) {
      const h = 60;
      const max = Math.max(1, ...d.load.map((b) => b.ok + b.late + b.rejected + b.failed));
      const bw = Math.max(1, LOAD_BUCKET_MS / msPerPx - 0.5);
      body = `<line x1="${left}" x2="${left + plotW}" y1="${y + h}" y2="${y + h}" class="axis"/>`;
      for (const b of d.load) {
        let top = y + h;
        for (const [kind, n, color] of [
          ['ok', b.ok, '#2e9d4f'],
          ['late', b.late, '#8e6bd6'],
          ['rejected', b.rejected, '#e08a1e'],
          ['failed', b.failed, '#c8372d'],
        ] as const) {
          if (n === 0) continue;
          const bh = (n / max) * h;
          top -= bh;
          body += `<rect class="req ${kind}" x="${x(b.t).toFixed(2)}" y="${top.toFixed(2)}" width="${bw.toFixed(2)}" height="${bh.toFixed(2)}" fill="${color}"><title>sent ${sec(b.t)}: ${b.ok} ok, ${b.late} late, ${b.rejected} 5xx, ${b.failed} no answer</title></rect>`;
        }
      }
      body += `<text x="${left + plotW}" y="${y - 2}" text-anchor="end" class="tick">max ${max} / 100 ms</text>`;
      lane('requests / 100 ms', h, body);
      parts.push(
        `<text x="${left - 10}" y="${y - 14 - h / 2 + 18}" text-anchor="end" class="tick">by send time</text>`,
      );
    }

    // Markers and time axis.
    const top = 22;
    const bottom = y - 6;
    const markers: [number | null, string][] = [
      [d.notBeforeAt, 'NotBefore'],
      [d.healthyAt, 'healthy again'],
    ];
    for (const [t, label] of markers) {
      if (t === null || t < from || t > to) continue;
      parts.push(
        `<line class="marker" x1="${x(t).toFixed(2)}" x2="${x(t).toFixed(2)}" y1="${top}" y2="${bottom}"/>`,
        `<text class="tick" x="${(x(t) + 3).toFixed(2)}" y="${top - 6}">${esc(label)}</text>`,
      );
    }
    const step = [1000, 2000, 5000, 10_000, 20_000, 30_000, 60_000].find(
      (s) => (to - from) / s <= 12,
    )!;
    parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${y}" y2="${y}" class="axis"/>`);
    for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
      parts.push(
        `<line x1="${x(t).toFixed(2)}" x2="${x(t).toFixed(2)}" y1="${y}" y2="${y + 5}" class="axis"/>`,
        `<text x="${x(t).toFixed(2)}" y="${y + 18}" text-anchor="middle" class="tick">${t / 1000} s</text>`,
      );
    }
    y += 30;
  }
  const H = y;

  // Measured pause vs the real one.
  const real = d ? d.resumedAt - d.frozenAt : report.freezeMs;
  const measured = d?.measuredPauseMs ?? null;
  const maxPause = Math.max(real, measured ?? 0, 1);
  const pauseBar = (label: string, ms: number | null, color: string, name: string) =>
    `<div class="pause-row"><span class="pause-label">${label}</span>` +
    (ms === null
      ? '<span class="muted">not reported — serve the health routes with <code>exposeStatus: true</code> to see it</span>'
      : `<svg width="420" height="18" class="pause" data-pause="${name}" data-ms="${ms}"><rect width="${((ms / maxPause) * 400).toFixed(2)}" height="18" fill="${color}"/></svg><span>${sec(ms)}</span>`) +
    '</div>';

  const rows: [string, string][] = [
    ['drained before the freeze', report.drainedBeforeFreeze ? 'yes' : 'no'],
    ['health failing before SIGSTOP', sec(report.drainLeadMs)],
    ['freeze (SIGSTOP → SIGCONT)', sec(real)],
    ['pause measured by the app', sec(measured)],
    ['out of rotation', sec(report.outOfRotationMs)],
    ['healthy again after SIGCONT', sec(report.recoveredAfterMs)],
    ['app approved the event', report.approved ? 'yes' : 'no'],
    ...balancerLines(report),
    ['health probes', String(report.probes)],
  ];
  if (d?.load) {
    const sum = (k: 'ok' | 'late' | 'rejected' | 'failed') => d.load!.reduce((n, b) => n + b[k], 0);
    rows.push([
      `requests ok / late (≥ ${LATE_MS} ms) / 5xx / no answer`,
      `${sum('ok')} / ${sum('late')} / ${sum('rejected')} / ${sum('failed')}`,
    ]);
  }
  const legend = [
    ...REPORT_PHASES.map((p) => [p.color, p.label]),
    ['#2e9d4f', '200 / ok'],
    ['#8e6bd6', `late (≥ ${LATE_MS} ms)`],
    ['#e08a1e', '5xx'],
    ['#c8372d', 'no answer'],
  ]
    .map(([c, l]) => `<span class="key"><i style="background:${c}"></i>${esc(l!)}</span>`)
    .join('');

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}: ${report.passed ? 'PASS' : 'FAIL'}</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1d2330; background: #fff; }
  h1 { font-size: 20px; margin: 0 0 12px; }
  .verdict { padding: 10px 14px; border-radius: 6px; font-weight: 600; margin-bottom: 16px; }
  .pass { background: #e3f4e7; color: #17602d; border: 1px solid #9bd3a9; }
  .fail { background: #fbe5e3; color: #8c1f17; border: 1px solid #eaa59e; }
  svg text { font: 12px system-ui, sans-serif; fill: #1d2330; }
  svg text.band { font-weight: 600; fill: #10141c; }
  svg text.tick { fill: #5b6373; font-size: 11px; }
  .axis { stroke: #9aa1ad; }
  .marker { stroke: #1d2330; stroke-dasharray: 4 3; }
  .wait { stroke: #9aa1ad; stroke-width: 2; }
  .keys { margin: 6px 0 18px; display: flex; flex-wrap: wrap; gap: 14px; color: #3b4251; }
  .key i { display: inline-block; width: 12px; height: 12px; margin-right: 5px; vertical-align: -1px; border-radius: 2px; }
  table { border-collapse: collapse; margin-top: 8px; }
  td { padding: 3px 14px 3px 0; border-bottom: 1px solid #eceef2; }
  td:last-child { font-variant-numeric: tabular-nums; font-weight: 600; }
  .pause-row { display: flex; align-items: center; gap: 10px; margin: 4px 0; }
  .pause-label { width: 230px; }
  .muted { color: #6b7280; }
  .note { max-width: 900px; margin-top: -8px; font-size: 13px; }
  #cursor { position: absolute; pointer-events: none; font-size: 11px; background: #1d2330; color: #fff; padding: 1px 5px; border-radius: 3px; display: none; }
  h2 { font-size: 15px; margin: 22px 0 6px; }
</style>
</head>
<body>
<h1>${esc(title)}</h1>
<div class="verdict ${report.passed ? 'pass' : 'fail'}" id="verdict">${esc(report.verdict)}</div>
${
  d
    ? `<svg id="timeline" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" data-ms-per-px="${msPerPx}" data-from-ms="${from}" role="img" aria-label="drill timeline">${parts.join('')}</svg>
<div class="keys">${legend}</div>${
        d.load
          ? '<p class="muted note">The load goes straight to the app, not through a load balancer: what is sent during the freeze goes unanswered whatever the app does. Behind a load balancer it would have gone to other instances from the moment health failed.</p>'
          : ''
      }`
    : '<p class="muted">No timeline recorded.</p>'
}
<h2>Pause: real vs measured</h2>
${pauseBar('real (SIGSTOP → SIGCONT)', real, '#5b7fd6', 'real')}
${pauseBar('measured by the app’s guard', measured, '#3a9aa8', 'measured')}
<h2>Figures</h2>
<table id="figures">${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>
<div id="cursor"></div>
<script>
// Hovering the timeline shows the time under the pointer.
(function () {
  var svg = document.getElementById('timeline');
  var tip = document.getElementById('cursor');
  if (!svg || !tip) return;
  var msPerPx = Number(svg.dataset.msPerPx), from = Number(svg.dataset.fromMs), left = ${left};
  svg.addEventListener('mousemove', function (e) {
    var box = svg.getBoundingClientRect();
    var px = e.clientX - box.left;
    if (px < left) { tip.style.display = 'none'; return; }
    tip.textContent = ((from + (px - left) * msPerPx) / 1000).toFixed(2) + ' s';
    tip.style.left = e.pageX + 10 + 'px';
    tip.style.top = e.pageY - 24 + 'px';
    tip.style.display = 'block';
  });
  svg.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
})();
</script>
</body>
</html>
`;
}
