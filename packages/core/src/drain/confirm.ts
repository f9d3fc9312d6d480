/**
 * Whether the load balancers have let go of this instance, judged from what the HTTP
 * adapter sees: the readiness answers each prober received and the ordinary requests
 * still arriving. Pure bookkeeping: every method takes the time, nothing reads a clock.
 */

/** What the monitor needs to know about the balancers. */
export interface DrainMonitorOptions {
  /** Failing readiness answers in a row after which a prober takes the instance out. */
  readonly unhealthyThreshold: number;
  /** The balancer's configured probe interval: how long a silent prober still counts. */
  readonly intervalMs: number;
  /**
   * The longest quiet period asked for: no ordinary request for this long once the probers
   * let go. Shorter under steady traffic (five mean gaps between arrivals, at least 200 ms):
   * quiet means the traffic stopped, and at 50 requests a second that shows in 200 ms.
   */
  readonly quietMs: number;
}

/** The monitor's answer. */
export type DrainVerdict =
  /** Not draining. */
  | { readonly state: 'serving' }
  /** Draining, and no prober has asked for readiness recently: only a fixed delay can help. */
  | { readonly state: 'unprobed' }
  /** Draining; what is still missing, in words for the log. */
  | { readonly state: 'pending'; readonly missing: readonly string[] }
  /** Every recent prober saw its failures, nothing in flight, no new request for `quietMs`. */
  | { readonly state: 'confirmed' };

/** The least time between the two looks that confirm: they must not share one turn of the event loop. */
const LOOK_GAP_MS = 50;

/** How long a prober counts after its last probe, at least. */
const MIN_WINDOW_MS = 30_000;

/** The shortest quiet period, however busy the traffic. */
const MIN_QUIET_MS = 200;

interface Prober {
  lastAt: number;
  /** Gap between its last two probes, or null after one. */
  intervalMs: number | null;
  /** Failing answers in a row since the drain began. */
  failures: number;
}

/**
 * Tracks probers and request arrivals across a drain.
 *
 * @example
 * ```ts
 * const m = new DrainMonitor({ unhealthyThreshold: 2, intervalMs: 5000, quietMs: 1000 });
 * m.begin(now);
 * m.probe('10.0.0.4 /health/ready', false, now + 500);
 * m.verdict(now + 600, 0); // { state: 'pending', missing: [...] }
 * ```
 */
export class DrainMonitor {
  readonly #o: DrainMonitorOptions;
  readonly #probers = new Map<string, Prober>();
  #beganAt: number | null = null;
  #lastRequestAt = 0;
  /** The arrival count the previous verdict saw, when it found the drain otherwise settled. */
  #settledAt: number | null = null;
  #arrivals = 0;
  #settledArrivals = -1;
  /** Mean gap between arrivals while draining (exponentially weighted), or null. */
  #gapMs: number | null = null;
  #sinceBegin = 0;

  constructor(options: DrainMonitorOptions) {
    this.#o = options;
  }

  get draining(): boolean {
    return this.#beganAt !== null;
  }

  /** Readiness started failing: count every prober's failures from here. */
  begin(now: number): void {
    if (this.#beganAt !== null) return;
    this.#beganAt = now;
    this.#lastRequestAt = now;
    this.#settledAt = null;
    this.#gapMs = null;
    this.#sinceBegin = 0;
    for (const p of this.#probers.values()) p.failures = 0;
  }

  /** Readiness serves again. */
  end(): void {
    this.#beganAt = null;
  }

  /** A readiness answer went out to `prober` (its address and what it asked for). */
  probe(prober: string, healthy: boolean, now: number): void {
    const p = this.#probers.get(prober);
    if (!p) {
      this.#probers.set(prober, {
        lastAt: now,
        intervalMs: null,
        failures: healthy || this.#beganAt === null ? 0 : 1,
      });
      this.#forgetStale(now);
      return;
    }
    if (now > p.lastAt) p.intervalMs = now - p.lastAt;
    p.lastAt = now;
    p.failures = healthy || this.#beganAt === null ? 0 : p.failures + 1;
  }

  /** An ordinary request arrived; only matters while draining. */
  request(now: number): void {
    if (this.#beganAt === null) return;
    this.#arrivals++;
    if (now < this.#lastRequestAt) return;
    // The first arrival after the drain began measures nothing yet.
    if (this.#sinceBegin++ > 0) {
      const gap = now - this.#lastRequestAt;
      this.#gapMs = this.#gapMs === null ? gap : this.#gapMs * 0.8 + gap * 0.2;
    }
    this.#lastRequestAt = now;
  }

  /** The quiet period asked for now. */
  quietMs(): number {
    if (this.#gapMs === null) return this.#o.quietMs;
    return Math.min(this.#o.quietMs, Math.max(MIN_QUIET_MS, Math.ceil(5 * this.#gapMs)));
  }

  /** How long a prober stays relevant after its last probe. */
  #windowMs(p: Prober): number {
    // Forgetting a prober too soon confirms a drain it has not seen: a congested instance
    // reads its probes seconds apart. So it counts for 30 s at least, or three intervals
    // (its own, stretched by lost probes to at most ten configured ones).
    const own = Math.min(3 * (p.intervalMs ?? 0), 10 * this.#o.intervalMs);
    return Math.max(MIN_WINDOW_MS, 3 * this.#o.intervalMs, own);
  }

  #forgetStale(now: number): void {
    // A bound on memory: probers from many addresses (a scan) must not pile up.
    if (this.#probers.size <= 64) return;
    for (const [key, p] of this.#probers)
      if (now - p.lastAt > this.#windowMs(p)) this.#probers.delete(key);
  }

  /** The probers that still count, with their failures. */
  probers(now: number): { prober: string; failures: number; intervalMs: number | null }[] {
    const out = [];
    for (const [prober, p] of this.#probers)
      if (now - p.lastAt <= this.#windowMs(p))
        out.push({ prober, failures: p.failures, intervalMs: p.intervalMs });
    return out;
  }

  /** Whether the balancers have let go, given the requests still in flight. */
  verdict(now: number, inFlight: number): DrainVerdict {
    if (this.#beganAt === null) return { state: 'serving' };
    const recent = this.probers(now);
    if (recent.length === 0) return { state: 'unprobed' };
    const missing: string[] = [];
    const need = this.#o.unhealthyThreshold;
    for (const p of recent)
      if (p.failures < need)
        missing.push(`prober ${p.prober} has received ${p.failures} of ${need} failing answers`);
    if (inFlight > 0) missing.push(`${inFlight} request(s) in flight`);
    const quietFor = now - this.#lastRequestAt;
    if (quietFor < this.#o.quietMs)
      missing.push(
        `the last request arrived ${quietFor} ms ago (quiet period ${this.#o.quietMs} ms)`,
      );
    if (missing.length > 0) {
      this.#settledAt = null;
      return { state: 'pending', missing };
    }
    // Settled twice with no arrival in between: a stalled event loop runs its timers before
    // it reads the sockets, so one look after a stall would take unread requests for quiet.
    if (
      this.#settledAt === null ||
      this.#settledArrivals !== this.#arrivals ||
      now - this.#settledAt < LOOK_GAP_MS
    ) {
      this.#settledAt = now;
      this.#settledArrivals = this.#arrivals;
      return {
        state: 'pending',
        missing: ['one more look, to be sure no request is waiting to be read'],
      };
    }
    return { state: 'confirmed' };
  }
}
