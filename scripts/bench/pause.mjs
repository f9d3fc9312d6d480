// Pause measurement (issue 12): measured vs real pause length, SIGSTOP and a QEMU VM pause.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { check, median, pick, round, until, wait } from './lib.mjs';

const pauseChild = fileURLToPath(
  new URL('../../packages/core/test/fixtures/bin/pause-child.mjs', import.meta.url),
);

export async function pause(row) {
  const child = spawn(process.execPath, [pauseChild], { stdio: ['pipe', 'pipe', 'inherit'] });
  const pauses = [];
  let ready = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const m = JSON.parse(line);
    if (m.ready) ready = true;
    if (m.pause) pauses.push(m.pause);
  });
  const errors = [];
  const stops = pick(10, 3, 2);
  try {
    await until(() => ready, 10_000, 'the pause child to start');
    await wait(500);
    for (let i = 0; i < stops; i++) {
      const ms = 1500 + Math.random() * 2000;
      child.kill('SIGSTOP');
      const t0 = performance.now();
      await wait(ms);
      child.kill('SIGCONT');
      const real = performance.now() - t0;
      const n = pauses.length;
      for (let j = 0; j < 100 && pauses.length === n; j++) await wait(20);
      if (pauses.length > n) errors.push(pauses.at(-1).pausedMs - real);
      await wait(300 + Math.random() * 400);
    }
  } finally {
    child.kill('SIGKILL');
  }
  if (errors.length === 0) throw new Error(`no pause measured over ${stops} SIGSTOPs`);
  const abs = errors.map(Math.abs);
  row(
    'pause',
    `SIGSTOP 1.5–3.5 s, measured − real (tick-gap, ${errors.length} of ${stops} stops)`,
    `median abs error ${round(median(abs))} ms, worst ${round(Math.max(...abs))} ms`,
    '± 100 ms',
  );
  if (check) {
    row('pause', 'QEMU VM pause', 'not run by --check (test/vm/drill.test.ts runs it in npm test)');
    return;
  }
  await vmPause(row);
}

// The VM pause: the VM drill (test/vm) stops a QEMU guest 5 s and reports what the guard measured.
async function vmPause(row) {
  const figures = `${tmpdir()}/fg-vm-figures-${process.pid}.jsonl`;
  const vitest = spawn('npx', ['vitest', 'run', 'test/vm/drill.test.ts'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    env: { ...process.env, FG_VM_FIGURES: figures },
    stdio: 'ignore',
    detached: true,
  });
  const limitMs = 15 * 60_000;
  const killer = setTimeout(() => {
    try {
      process.kill(-vitest.pid, 'SIGKILL');
    } catch {}
  }, limitMs);
  const code = await new Promise((r) => vitest.once('exit', r));
  clearTimeout(killer);
  let lines = [];
  try {
    lines = readFileSync(figures, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  } catch {}
  rmSync(figures, { force: true });
  if (lines.length === 0)
    throw new Error(
      `the VM drill produced no figures (exit ${code}; limit ${limitMs / 60_000} min)`,
    );
  for (const f of lines) {
    row(
      'pause',
      `QEMU VM stopped ${round(f.realMs / 1000, 2)} s, ${f.variant === 'step' ? 'clock stepped after cont' : 'no clock step'}: measured − real (${f.signal})`,
      `${f.measuredMs - f.realMs} ms (±${f.uncertaintyMs} resolution)`,
      f.signal === 'reference' ? '± 1 s (Date header)' : '± 100 ms',
    );
    row(
      'pause',
      `QEMU VM, ${f.variant === 'step' ? 'clock stepped' : 'no clock step'}: guarded back in rotation after the ${f.variant === 'step' ? 'step' : 'resume'}`,
      f.backMs === null ? 'never' : `${f.backMs} ms`,
      f.variant === 'step' ? '< 2000 ms' : '< 3000 ms',
    );
  }
}
