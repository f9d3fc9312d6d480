import { Worker } from 'node:worker_threads';

/**
 * A witness the main thread cannot block. When the main thread's timer comes back late,
 * the pause detector asks it whether it was stopped too: a process stop (SIGSTOP, a
 * frozen cgroup) stops every thread, an event-loop stall (a long synchronous task, a GC
 * pause of the main isolate) stops only the main thread.
 *
 * @example
 * ```ts
 * const observer = workerObserver();
 * observer.start();
 * // …after a late tick of `gapMs`:
 * const stall = observer.longestSilenceMs(gapMs) < gapMs / 2;
 * observer.stop();
 * ```
 */
export interface SecondObserver {
  start(): void;
  stop(): void;
  /**
   * The longest stretch, in ms, during the last `windowMs` (ending now) in which the
   * observer itself could not run, or `null` when it was not running for all of that window
   * (then it cannot testify).
   */
  longestSilenceMs(windowMs: number): number | null;
}

/** Options of {@link workerObserver}. */
export interface WorkerObserverOptions {
  /** How often the worker notes that it runs. Default 100 ms. */
  readonly beatMs?: number;
}

// Layout of the shared buffer, in Float64 slots (times are ms on the process-wide
// monotonic clock, hrtime, which every thread reads alike): [0] the worker's last beat,
// [1] when it started beating, [2..2+2*RING) a ring of its own silences (start, end),
// [2+2*RING] the ring's write count; an Int32 right after them asks it to stop.
const RING = 8;
const SLOTS = 3 + 2 * RING;

// Runs in the worker: a loop sleeping in Atomics.wait costs no event loop and a few
// wake-ups a second. A silence is any beat-to-beat interval much longer than a beat.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { buffer, beatMs, ring, slots } = workerData;
const f = new Float64Array(buffer, 0, slots);
const stop = new Int32Array(buffer, slots * 8, 1);
const now = () => Number(process.hrtime.bigint()) / 1e6;
let last = now();
f[1] = last;
f[0] = last;
while (Atomics.load(stop, 0) === 0) {
  Atomics.wait(stop, 0, 0, beatMs);
  const t = now();
  if (t - last > beatMs * 3) {
    const n = f[2 + 2 * ring];
    const i = 2 + 2 * (n % ring);
    f[i] = last;
    f[i + 1] = t;
    f[2 + 2 * ring] = n + 1;
  }
  f[0] = t;
  last = t;
}
`;

const hrMs = () => Number(process.hrtime.bigint()) / 1e6;

/**
 * The production {@link SecondObserver}: a `worker_threads` thread that beats every
 * `beatMs` into a `SharedArrayBuffer`. It is `unref()`ed (never keeps the process alive)
 * and terminated on `stop()`. A worker costs about 9 MiB of RSS, so the guard only runs it
 * while an event is known.
 *
 * @example
 * ```ts
 * const detector = createPauseDetector({ ...options, secondObserver: workerObserver({ beatMs: 50 }) });
 * ```
 */
export function workerObserver(options: WorkerObserverOptions = {}): SecondObserver {
  const beatMs = options.beatMs ?? 100;
  let worker: Worker | null = null;
  let shared: Float64Array | null = null;
  let stopFlag: Int32Array | null = null;

  return {
    start() {
      if (worker) return;
      const buffer = new SharedArrayBuffer(SLOTS * 8 + 8);
      shared = new Float64Array(buffer, 0, SLOTS);
      stopFlag = new Int32Array(buffer, SLOTS * 8, 1);
      worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { buffer, beatMs, ring: RING, slots: SLOTS },
        // The loop allocates nothing; a small heap keeps its footprint small.
        resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 },
        stdout: false,
        stderr: false,
      });
      // A witness that died cannot testify; the detector then reports gaps uncorroborated.
      worker.on('error', () => {});
      worker.unref();
    },
    stop() {
      if (!worker) return;
      if (stopFlag) {
        Atomics.store(stopFlag, 0, 1);
        Atomics.notify(stopFlag, 0);
      }
      void worker.terminate().catch(() => {});
      worker = null;
      shared = null;
      stopFlag = null;
    },
    longestSilenceMs(windowMs) {
      const f = shared;
      if (!f) return null;
      const now = hrMs();
      const from = now - windowMs;
      // Not beating yet when the window began: it cannot say what happened before.
      if (f[1] === 0 || f[1]! > from) return null;
      // Still silent now (it has not run since a stop ended, or it is stuck with us).
      let longest = Math.max(0, now - f[0]!);
      const written = f[2 + 2 * RING]!;
      for (let k = 0; k < Math.min(written, RING); k++) {
        const i = 2 + 2 * k;
        const start = f[i]!;
        const end = f[i + 1]!;
        if (end <= from) continue;
        longest = Math.max(longest, end - Math.max(start, from));
      }
      return longest;
    },
  };
}
