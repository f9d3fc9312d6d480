/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// page.evaluate() runs in the browser: DOM types for this file (the build of src has none).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DrillReport } from '../src/index.js';

// The drill report is HTML people open in a browser: it is checked in a real one.
const CHROMIUM = '/usr/bin/chromium';
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const app = fileURLToPath(new URL('./fixtures/status-app.mjs', import.meta.url));
/** Kept after the run (gitignored): a look at what the test saw. */
const SCREENSHOT = fileURLToPath(
  new URL('../../../.freezeguard-tmp/artifacts/drill-report.png', import.meta.url),
);

const FREEZE_MS = 2000;
let work = '';
let report: DrillReport;
let html = '';

function run(args: string[]) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: the drill report is checked in Debian's Chromium. Install it with \`sudo apt-get install -y chromium\` (or run \`node scripts/prerequisites.mjs\` as root).`,
    );
  work = mkdtempSync(join(tmpdir(), 'freezeguard-report-'));
  const file = join(work, 'drill.html');
  const res = await run([
    'drill',
    '--freeze',
    `${FREEZE_MS}ms`,
    '--notice',
    '6s',
    '--load',
    '50',
    '--report',
    file,
    '--json',
    '--',
    process.execPath,
    app,
  ]);
  expect(res.code, res.stderr).toBe(0);
  report = JSON.parse(res.stdout) as DrillReport;
  html = readFileSync(file, 'utf8');
}, 90_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('freezeguard drill --report', () => {
  it('writes one self-contained page: nothing fetched from elsewhere', () => {
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(/i);
    expect(html).toContain('<svg id="timeline"');
  });

  it('draws the phases in order, the freeze to scale, the probes and the load, offline, without errors', async () => {
    const d = report.detail!;
    const userDataDir = mkdtempSync(join(work, 'chromium-'));
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1010, height: 820 },
    });
    try {
      await context.setOffline(true);
      const page = await context.newPage();
      const problems: string[] = [];
      const fetched: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning')
          problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('request', (r) => fetched.push(r.url()));
      const url = pathToFileURL(join(work, 'drill.html')).href;
      await page.goto(url);

      const drawn = await page.evaluate(() => {
        const svg = document.getElementById('timeline')!;
        const phases = [...document.querySelectorAll<SVGGElement>('g.phase')].map((g) => {
          const box = g.querySelector('rect')!.getBoundingClientRect();
          return {
            name: g.dataset.phase!,
            start: Number(g.dataset.startMs),
            end: Number(g.dataset.endMs),
            left: box.left,
            width: box.width,
            visible: box.width > 0 && box.height > 0,
          };
        });
        const probes = [...document.querySelectorAll<SVGRectElement>('rect.probe')].map((r) => ({
          status: r.dataset.status!,
          t: Number(r.dataset.tMs),
          color: getComputedStyle(r).fill,
        }));
        const requests = [...document.querySelectorAll('rect.req')].map((r) => r.classList[1]);
        const pause = (name: string) =>
          document.querySelector<SVGElement>(`svg[data-pause="${name}"]`)?.dataset.ms ?? null;
        return {
          msPerPx: Number(svg.dataset.msPerPx),
          phases,
          probes,
          requests,
          real: pause('real'),
          measured: pause('measured'),
          verdict: document.getElementById('verdict')!.textContent,
          figures: document.getElementById('figures')!.textContent,
        };
      });

      // The five phases, left to right, in lifecycle order.
      expect(drawn.phases.map((p) => p.name)).toEqual([
        'announced',
        'draining',
        'ready',
        'frozen',
        'resumed',
      ]);
      for (const p of drawn.phases) expect(p.visible, p.name).toBe(true);
      for (let i = 1; i < drawn.phases.length; i++)
        expect(drawn.phases[i]!.left).toBeGreaterThan(drawn.phases[i - 1]!.left);

      // The freeze band is as wide as the freeze: SIGSTOP → SIGCONT as measured by the
      // drill, within a pixel, and that is the requested freeze give or take timer lateness.
      const frozen = drawn.phases.find((p) => p.name === 'frozen')!;
      expect(frozen.start).toBe(d.frozenAt);
      expect(frozen.end).toBe(d.resumedAt);
      expect(Math.abs(frozen.width - (d.resumedAt - d.frozenAt) / drawn.msPerPx)).toBeLessThan(1.5);
      expect(frozen.width * drawn.msPerPx).toBeGreaterThan(FREEZE_MS - 50);
      expect(frozen.width * drawn.msPerPx).toBeLessThan(FREEZE_MS + 400);

      // Every health answer the prober got, coloured by what it was.
      expect(drawn.probes).toHaveLength(report.probes);
      const colour = (status: string) =>
        new Set(drawn.probes.filter((p) => p.status === status).map((p) => p.color));
      expect(colour('200')).toEqual(new Set(['rgb(46, 157, 79)']));
      expect(colour('503')).toEqual(new Set(['rgb(224, 138, 30)']));
      // Draining answers come before the freeze, good ones again after SIGCONT.
      expect(drawn.probes.filter((p) => p.status === '503').every((p) => p.t < d.frozenAt)).toBe(
        true,
      );
      expect(drawn.probes.some((p) => p.status === '200' && p.t > d.resumedAt)).toBe(true);

      // The load: answered before the freeze, unanswered during it.
      expect(drawn.requests).toContain('ok');
      expect(drawn.requests).toContain('failed');

      // Measured pause vs the real one.
      expect(Number(drawn.real)).toBe(d.resumedAt - d.frozenAt);
      expect(d.measuredPauseMs).not.toBeNull();
      expect(Math.abs(Number(drawn.measured) - FREEZE_MS)).toBeLessThan(400);

      expect(drawn.verdict).toMatch(/^PASS: drained \d+ ms before the freeze/);
      expect(drawn.figures).toContain('drained before the freeze');

      // Hovering the timeline shows the time (the inline script runs).
      await page.mouse.move(frozen.left + frozen.width / 2, 180);
      await expect.poll(() => page.textContent('#cursor')).toMatch(/^\d+\.\d\d s$/);

      mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
      await page.mouse.move(0, 0);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(fetched).toEqual([url]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
