/*
 * The drill's types: what it takes, what it found. A leaf module, so that running,
 * judging and rendering a drill share them without importing one another.
 */
import type { BalancerOption } from '@freezeguard/core';
import type { SimCloud } from '../types.js';
import type { LoadBucket } from './load.js';

/** Options of {@link runDrill}. */
export interface DrillOptions {
  /** The app to start: program and arguments. */
  readonly command: readonly string[];
  /** How long the app is stopped (SIGSTOP). Default 5000. */
  readonly freezeMs?: number;
  /** NotBefore this far after scheduling. Default 20000. */
  readonly noticeMs?: number;
  /** The app's readiness URL. Default `http://127.0.0.1:$PORT/health/ready`, PORT chosen by the drill. */
  readonly healthUrl?: string;
  /**
   * The cloud to rehearse: `azure` (a Freeze), `gcp` (a live migration) or `aws` (a
   * system-maintenance event). The app gets `FREEZEGUARD_CLOUD`. Default `azure`.
   */
  readonly cloud?: SimCloud;
  /** The VM name the emulator and the app agree on. Default `drill-vm`. */
  readonly resourceName?: string;
  /** Probe interval, like a load balancer's. Default 250, or the `lb` balancer's. */
  readonly probeIntervalMs?: number;
  /**
   * Probe like this balancer (a preset name such as `kubernetes`, or
   * `{ intervalMs, unhealthyThreshold }`) and judge by it: the drill fails when the app
   * approved, or was frozen, while the emulated balancer still routed to it. The app gets
   * it as `FREEZEGUARD_LB`.
   */
  readonly lb?: BalancerOption;
  /** Wait this long for the app to answer 200 first. Default 30000. */
  readonly startTimeoutMs?: number;
  /** The app must be healthy again this soon after SIGCONT to pass. Default 5000. */
  readonly recoverWithinMs?: number;
  /** Extra environment for the app. */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Progress lines (timeline entries, app output). */
  readonly onProgress?: (line: string) => void;
  readonly signal?: AbortSignal;
  /** Send this steady load at the app during the drill (for the report), to `path` (default `/`). */
  readonly load?: { readonly rps: number; readonly path?: string };
}

/** One moment of the drill, ms since it began. */
export interface TimelineEntry {
  readonly t: number;
  readonly what: string;
}

/** What a drill found. */
export interface DrillReport {
  readonly passed: boolean;
  readonly verdict: string;
  /** Health was failing continuously from before SIGSTOP. */
  readonly drainedBeforeFreeze: boolean;
  /** How long before SIGSTOP health started failing, ms (null if it did not). */
  readonly drainLeadMs: number | null;
  /** First failing probe to first good probe after the freeze, ms. */
  readonly outOfRotationMs: number | null;
  /** SIGCONT to the first good probe, ms (null if never). */
  readonly recoveredAfterMs: number | null;
  /** With `lb`: the balancer emulated and when it let go (ms since the drill began, null if never before the freeze). */
  readonly balancer?: {
    readonly intervalMs: number;
    readonly unhealthyThreshold: number;
    readonly letGoAt: number | null;
  };
  readonly approved: boolean;
  readonly freezeMs: number;
  readonly probes: number;
  readonly timeline: readonly TimelineEntry[];
  /** What the HTML report (`renderDrillReport`) draws. */
  readonly detail?: DrillDetail;
}

/** One health probe of the drill, ms since it began. */
export interface Probe {
  readonly t: number;
  readonly ok: boolean;
  readonly status: number | string;
  /** When the answer (or its failure) came, for the report. */
  readonly doneAt?: number;
}

/** What the HTML report draws, ms since the drill began. */
export interface DrillDetail {
  /** The Freeze appeared in the emulator's document. */
  readonly announcedAt: number | null;
  /** Its NotBefore. */
  readonly notBeforeAt: number | null;
  /** Health started failing (the streak that lasted into the freeze). */
  readonly drainingAt: number | null;
  /** The app approved the event: it had prepared. Null when it never approved. */
  readonly readyAt: number | null;
  /** SIGSTOP. */
  readonly frozenAt: number;
  /** SIGCONT. */
  readonly resumedAt: number;
  /** First good health answer after SIGCONT. */
  readonly healthyAt: number | null;
  /** The last probe. */
  readonly endAt: number;
  /** Every health probe: sent at `t`, answered (or failed) at `doneAt`, with the HTTP status or an error code / `timeout`. */
  readonly probes: readonly {
    readonly t: number;
    readonly doneAt: number;
    readonly status: number | string;
  }[];
  /** Outcomes per 100 ms when a load was run. */
  readonly load: readonly LoadBucket[] | null;
  /** The pause the app's guard measured (its health JSON, when it exposes status), ms. */
  readonly measuredPauseMs: number | null;
}
