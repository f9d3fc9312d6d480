#!/usr/bin/env node
// `npm run bench [-- --quick] [-- --check] [-- --only name,name]`: measures the speed and
// memory targets and prints one markdown table. Figures, not assertions: a target missed
// fails nothing. `--check` (with the fewest iterations) fails the run, exit 1, when a
// stage does not complete: npm test runs it so the bench cannot rot. Every stage has a
// time limit. Stages: reaction, idle, overhead, probe, drills, bullmq, bullmq-resume, pause.
import { idle, probe, reaction } from './bench/core.mjs';
import { bullmq, bullmqResume, drills } from './bench/drills.mjs';
import { check, loadAverage, machine, quick, stopStarted } from './bench/lib.mjs';
import { overhead } from './bench/overhead.mjs';
import { pause } from './bench/pause.mjs';

const only = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? new Set(process.argv[i + 1].split(',')) : null;
})();
// Limits per stage, in seconds: normal run, then --quick / --check.
const stages = {
  reaction: [reaction, 120, 30],
  idle: [idle, 120, 40],
  overhead: [overhead, 900, 90],
  probe: [probe, 120, 30],
  drills: [drills, 600, 90],
  bullmq: [bullmq, 1200, 120],
  'bullmq-resume': [bullmqResume, 300, 60],
  pause: [pause, 1200, 60],
};
if (only) {
  const unknown = [...only].filter((name) => !(name in stages));
  if (unknown.length > 0) {
    process.stderr.write(
      `bench: no stage ${unknown.join(', ')} (stages: ${Object.keys(stages).join(', ')})\n`,
    );
    process.exit(2);
  }
}

const rows = [];
const reports = [];
const failures = [];
const row = (section, measure, value, target = '') => {
  rows.push({ section, measure, value, target });
  process.stderr.write(`  ${section}: ${measure} = ${value}\n`);
};
const mode = check ? ' (--check)' : quick ? ' (quick)' : '';
process.stderr.write(
  `freezeguard benchmarks${mode} on ${machine()}, load average ${loadAverage()}\n`,
);
for (const [name, [fn, fullLimit, quickLimit]] of Object.entries(stages)) {
  if (only && !only.has(name)) continue;
  const limit = quick ? quickLimit : fullLimit;
  process.stderr.write(`${name}…\n`);
  const t0 = performance.now();
  let timer;
  try {
    await Promise.race([
      fn(row, (text) => reports.push(text)),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`did not finish within ${limit} s`)),
          limit * 1000,
        );
      }),
    ]);
    process.stderr.write(`${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  } catch (err) {
    const why = String(err?.message ?? err);
    failures.push(`${name}: ${why}`);
    row(name, 'FAILED', why);
    process.stderr.write(`bench: stage ${name} FAILED: ${why}\n`);
    await stopStarted();
  } finally {
    clearTimeout(timer);
  }
}
await stopStarted();
const out = [
  `Benchmarks${mode} — ${machine()}, ${new Date().toISOString().slice(0, 10)}, load average ${loadAverage()}`,
  '',
  '| area | measure | value | target |',
  '| --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.section} | ${r.measure} | ${r.value} | ${r.target} |`),
  ...reports.flatMap((text) => ['', text]),
];
process.stdout.write(`${out.join('\n')}\n`);
if (check && failures.length > 0) {
  process.stderr.write(
    `bench --check: ${failures.length} stage(s) failed:\n  ${failures.join('\n  ')}\n`,
  );
  process.exit(1);
}
process.exit(0);
