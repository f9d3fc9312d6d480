/*
 * Types every cloud shares: what any emulator is, the faults all three serve, and the
 * playbook through which each cloud plays its scenarios and rehearsals. A leaf module:
 * it imports nothing of the package, so the clouds, the entry and the drill can all use
 * it without import cycles.
 */

/** The clouds the simulator emulates. */
export type SimCloud = 'azure' | 'gcp' | 'aws';

/** A fault served instead of the next answers of the Scheduled Events endpoint. */
export interface FaultInput {
  /** Answer with this HTTP status (e.g. 410, 429, 500). */
  readonly status?: number;
  /** Wait this long before answering (combine with `status` or alone). */
  readonly delayMs?: number;
  /** Answer 200 with a body that is not a valid document. */
  readonly garbage?: boolean;
  /** Answer 200 with a body over 1 MiB. */
  readonly oversized?: boolean;
  /** Destroy the connection without answering. */
  readonly reset?: boolean;
  /** How many requests it applies to. Default 1. */
  readonly times?: number;
}

/** One request the emulator saw. */
export interface SimRequest {
  readonly at: number;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  status: number;
}

/** What every emulator is, whatever the cloud; tell them apart by `cloud`. */
export interface CloudEmulator {
  readonly cloud: SimCloud;
  /** Base URL: pass it as `FREEZEGUARD_IMDS_ENDPOINT`. */
  readonly url: string;
  readonly port: number;
  /** This VM's name (Azure, GCE) or instance id (EC2). */
  readonly resourceName: string;
  /** Every request seen (the last 10,000). */
  readonly requests: readonly SimRequest[];
  clearFaults(): void;
  on(event: 'request', listener: (request: SimRequest) => void): this;
  off(event: string, listener: (...args: never[]) => void): this;
  close(): Promise<void>;
}

/** Options of a scenario run. */
export interface ScenarioOptions {
  /** Divides the cloud's real notices (60 turns 15 minutes into 15 seconds). Default 1. */
  readonly timeScale?: number;
}

/** A named rehearsal of what a cloud does, played on its emulator. */
export interface Scenario<S, R> {
  readonly summary: string;
  /** Plays it with the real notices divided by `scale`. */
  run(sim: S, scale: number): R;
}

/** The freeze a rehearsal plays. */
export interface FreezePlan {
  readonly freezeMs: number;
  /** Announcement to the freeze (Azure: NotBefore this far after scheduling). */
  readonly noticeMs: number;
  /** Resources of the event, where the cloud lists them (Azure). Default `[sim.resourceName]`. */
  readonly resources?: readonly string[];
  readonly signal?: AbortSignal;
}

/** A freeze the emulator announced: the rehearsal waits for `go`, freezes, then calls `done`. */
export interface FreezeAnnouncement {
  readonly eventId: string;
  /** Resolves when the platform would freeze; true when the app approved the event first. */
  go(): Promise<boolean>;
  /** The freeze is over: the emulator says so its own way. */
  done(): void;
}

/**
 * What one cloud brings: its emulator, its scenarios and how it announces a freeze or a
 * shutdown. The entry (`startSimulator`, `runScenario`, `rehearseFreeze`,
 * `rehearseShutdown`) works through this and nothing else, whatever the cloud.
 */
export interface CloudPlaybook<S extends CloudEmulator, O, N extends string, R> {
  readonly cloud: S['cloud'];
  start(options: O): Promise<S>;
  readonly scenarios: Readonly<Record<N, Scenario<S, R>>>;
  /** Announces a freeze-like event on `sim`; `mark` notes progress on the timeline. */
  announceFreeze(sim: S, plan: FreezePlan, mark: (what: string) => void): FreezeAnnouncement;
  /**
   * Announces that the instance goes away `noticeMs` from now; returns how long until it
   * does (the cloud may round). Absent where the emulator has no such notice.
   */
  announceShutdown?(sim: S, noticeMs: number, mark: (what: string) => void): number;
}

/** When things happened, in `performance.now()` milliseconds. */
export interface Rehearsal {
  readonly eventId: string;
  readonly approved: boolean;
  readonly stopAt: number;
  readonly continueAt: number;
}
