import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createGuard, type Participant, type Phase } from '../src/index.js';
import { FakeClock, MemorySource, recordingLogger } from '../src/testing.js';
import { type FleetMode, ModelFleet } from './model-fleet.js';
import {
  type Behaviour,
  BOUND,
  DRAIN,
  FLEET_WAIT,
  fleetScenarioArb,
  KNOWN,
  LEAD,
  MAX_HOLD,
  newStats,
  POLL,
  PREPARE_TIMEOUT,
  RESUME_TIMEOUT,
  RUNS,
  type Scenario,
  SEED,
  SHUTDOWN,
  type Stats,
  scenarioArb,
  summary,
  TICK,
  traceLogger,
  VM,
  type WorldEvent,
} from './model-scenarios.js';

/*
 * Model-based test of the whole guard (policy, tracker, participants, timers) against a
 * simulated platform. The world announces, reschedules, starts, freezes, cancels and
 * removes events the way Azure does (a poll every second, a freeze only after Started,
 * a new EventId now and then), throws in process stops that are not the freeze, NTP
 * steps, duplicates, other VMs' events, malformed entries and an incarnation going
 * backwards, and the participants succeed, throw or hang. After every step:
 *
 *   I1  never serving when the platform freezes an event of ours (it was Started);
 *   I2  never out of rotation longer than BOUND after the last reason to be;
 *   I3  approvals only for events naming this VM (alone, under 'solo'), never when a
 *       participant failed its prepare;
 *   I4  every prepare has its resume once the events are gone and the guard stopped;
 *   I5  idle and serving within BOUND after the document empties.
 *
 * A second configuration runs the same world with an in-memory fleet (model-fleet.ts)
 * whose slots are granted, refused or not answered (Redis down or slow), and whose
 * approvals are claimed once, by the last VM to prepare. There I1 excepts a member
 * without a slot (it keeps serving by design), the bounds allow for a slow fleet, and:
 *
 *   F1  an approval only from a member that prepared (no prepare still running) and
 *       holds a slot, or needs none (the fleet unavailable); under 'fleet' only when the
 *       fleet named it the last to prepare, or solo (an event listing this VM alone)
 *       while the fleet is unavailable; never twice for one event;
 *   F2  a member without a slot never fails readiness once the fleet answered (unless
 *       the fleet is unavailable: then it acts solo);
 *   F3  the slot is given back once the guard stopped.
 *
 * One known gap, on main too (issue 19: "a late slot … approval waits for it"): a slot
 * granted after a refusal runs the traffic phase late, and the approval does not wait
 * for it. Approvals given while only that late traffic prepare still ran are counted
 * ("during a late traffic phase") instead of failing F1/I3; any other is a failure.
 */

const plain = newStats();
const withFleet = newStats();

async function run(sc: Scenario, stats: Stats): Promise<void> {
  stats.sequences++;
  const kinds = stats.kinds;
  const clock = new FakeClock({ now: Date.UTC(2026, 5, 1), flushRounds: 1 });
  const source = new MemorySource({ resourceName: VM });
  const calls = { prepare: [0, 0, 0], resume: [0, 0, 0] };
  const settled = [0, 0, 0];
  const running = (i: number) => calls.prepare[i]! > settled[i]!;
  const fleet = sc.fleet
    ? new ModelFleet({
        ...sc.fleet,
        snapshot: () => ({
          preparing: [0, 1, 2].some(running),
          onlyTraffic: running(0) && !running(1) && !running(2),
        }),
      })
    : undefined;
  const knownGap = new Set<string>();
  const bound = BOUND + (fleet ? FLEET_WAIT : 0);
  const unavailable = (mode: FleetMode | null) => mode === 'unavailable' || mode === 'slow';
  const approved = new Set<string>();
  const guard = createGuard({
    source,
    ...(fleet ? { fleet } : {}),
    clock,
    timers: clock,
    logger: process.env.MODEL_TRACE ? traceLogger(clock) : recordingLogger(),
    resourceName: VM,
    approve: sc.approve,
    resumeWhen: sc.resumeWhen,
    leadTimeMs: LEAD,
    drainDelayMs: DRAIN,
    prepareTimeoutMs: PREPARE_TIMEOUT,
    resumeTimeoutMs: RESUME_TIMEOUT,
    maxHoldMs: MAX_HOLD,
    tickIntervalMs: TICK,
    pauseThresholdMs: 1_000,
  });
  if (fleet) {
    guard.on('participant', (info) => {
      if (info.step === 'prepare') settled[Number(info.name.slice(1))]!++;
    });
  }
  const phases: Phase[] = ['traffic', 'work', 'data'];
  const wait = (ms: number) => new Promise<void>((r) => clock.setTimeout(r, ms));
  const act = (b: Behaviour, ms: number) =>
    b === 'hang'
      ? new Promise<void>(() => {})
      : wait(ms).then(() => {
          if (b === 'throw') throw new Error('participant failure');
        });
  sc.participants.forEach((pp, i) => {
    const p: Participant = {
      name: `p${i}`,
      phase: phases[i]!,
      prepare: () => {
        calls.prepare[i]!++;
        return act(pp.prepare, pp.ms);
      },
      resume: () => {
        calls.resume[i]!++;
        return act(pp.resume, pp.ms);
      },
    };
    guard.use(p);
  });
  const anyPrepareFails = sc.participants.some((p) => p.prepare !== 'ok');

  const world: WorldEvent[] = [];
  let seq = 0;
  let incarnation = 100;
  let lastJustified = clock.now();
  const fail = (msg: string) => {
    throw new Error(`${msg} at +${clock.now() - Date.UTC(2026, 5, 1)} ms; state ${guard.state}`);
  };

  const relevant = (e: WorldEvent) =>
    e.resources.includes(VM) && KNOWN.has(e.type) && !(e.dur === 0 && !SHUTDOWN.has(e.type));
  const active = (e: WorldEvent) => e.status === 'Scheduled' || e.status === 'Started';
  const justified = (now: number) =>
    world.some((e) => {
      if (!relevant(e) || !active(e)) return false;
      if (SHUTDOWN.has(e.type)) return e.status === 'Started' || (e.notBefore ?? now) - LEAD <= now;
      if (e.status === 'Started') return !e.frozeDone || sc.resumeWhen === 'removed';
      return (e.notBefore ?? now) - LEAD <= now;
    });
  const check = () => {
    stats.steps++;
    const now = clock.now();
    if (justified(now)) lastJustified = now;
    else if (!guard.isReady() && now - lastJustified > bound)
      fail(`I2: out of rotation ${now - lastJustified} ms after the last reason`);
    if (fleet) checkFleet();
    for (const id of source.approvals.splice(0)) {
      stats.approvalsSeen++;
      const e = world.find((w) => w.id === id);
      if (!e?.resources.includes(VM)) fail(`I3: approved ${id}, which does not name us`);
      if (sc.approve === 'solo' && e!.resources.length !== 1)
        fail(`I3: solo approved shared ${id}`);
      if (sc.approve === 'never') fail(`I3: approved under 'never'`);
      if (anyPrepareFails && !knownGap.has(id))
        fail(`I3: approved ${id} although a participant failed its prepare`);
    }
  };
  const checkFleet = () => {
    if (!fleet) return;
    const answered = fleet.pending === 0;
    if (!guard.isReady() && answered && !fleet.holdsSlot && !unavailable(fleet.lastAsk))
      fail(`F2: out of rotation without a slot (the fleet answered ${fleet.lastAsk})`);
    for (const r of fleet.approvals.splice(0)) {
      if (approved.has(r.id)) fail(`F1: approved ${r.id} twice`);
      approved.add(r.id);
      if (r.member.preparing) {
        if (!r.member.onlyTraffic) fail(`F1: approved ${r.id} while a prepare still ran`);
        knownGap.add(r.id);
        stats.lateTraffic++;
      }
      if (!r.holdsSlot && !unavailable(r.lastAsk))
        fail(`F1: approved ${r.id} without a slot (the fleet answered ${r.lastAsk})`);
      const e = world.find((w) => w.id === r.id);
      const solo = unavailable(r.lastAsk) && e?.resources.length === 1;
      if (sc.approve === 'fleet' && !r.claimed && !solo)
        fail(`F1: approved ${r.id} although the fleet did not name this member the last`);
    }
  };
  const document = (extra: unknown[] = []) => ({
    DocumentIncarnation: ++incarnation,
    Events: [
      ...world
        .filter((e) => e.status !== 'gone')
        .map((e) => ({
          EventId: e.id,
          EventType: e.type,
          ResourceType: 'VirtualMachine',
          Resources: e.resources,
          EventStatus: e.status,
          NotBefore: e.notBefore === null ? '' : new Date(e.notBefore).toUTCString(),
          DurationInSeconds: e.dur,
        })),
      ...extra,
    ],
  });
  const poll = () => source.publish(document());
  const advance = async (ms: number) => {
    let left = ms;
    while (left > 0) {
      const step = Math.min(POLL, left);
      await clock.advance(step);
      left -= step;
      poll();
      check();
    }
  };
  const pick = (which: number, ok: (e: WorldEvent) => boolean) => {
    const list = world.filter(ok);
    return list.length === 0 ? undefined : list[which % list.length];
  };

  await guard.start();
  try {
    for (const a of sc.actions) {
      const now = clock.now();
      kinds[a.k] = (kinds[a.k] ?? 0) + 1;
      switch (a.k) {
        case 'announce': {
          const resources = a.ours ? (a.shared ? [VM, 'vm-2'] : [VM]) : ['vm-3'];
          world.push({
            id: `E${++seq}`,
            type: a.type,
            resources,
            status: 'Scheduled',
            notBefore:
              Math.floor((now + Math.max(a.inMs, SHUTDOWN.has(a.type) ? 30_000 : 0)) / 1000) * 1000,
            dur: a.dur,
            frozeDone: false,
            startedAt: null,
          });
          poll();
          break;
        }
        case 'reschedule': {
          const e = pick(a.which, (w) => w.status === 'Scheduled');
          if (e)
            e.notBefore = Math.floor(Math.max(now, (e.notBefore ?? now) + a.byMs) / 1000) * 1000;
          poll();
          break;
        }
        case 'start': {
          const e = pick(a.which, (w) => w.status === 'Scheduled');
          if (e) {
            e.status = 'Started';
            e.notBefore = null;
            e.startedAt = now;
          }
          poll();
          break;
        }
        case 'freeze': {
          // The platform starts a Freeze (if it has not yet) and freezes the VM moments
          // later; it never freezes for an event it started long ago.
          const e = pick(
            a.which,
            (w) =>
              w.type === 'Freeze' &&
              !w.frozeDone &&
              (w.status === 'Scheduled' ||
                (w.status === 'Started' &&
                  w.startedAt !== null &&
                  now - w.startedAt < MAX_HOLD / 2)),
          );
          if (!e) break;
          if (e.status === 'Scheduled') {
            e.status = 'Started';
            e.notBefore = null;
            e.startedAt = now;
            poll();
            check();
            if (a.lagMs > 0) await advance(a.lagMs);
          }
          // With a fleet, a member without a slot keeps serving by design (minInRotation).
          const noSlot = fleet !== undefined && guard.status().cycle?.draining === false;
          if (relevant(e) && guard.isReady() && !noSlot)
            fail(`I1: serving when ${e.id} froze the VM`);
          stats.freezes++;
          if (a.hyperv) await clock.hypervPause(a.ms);
          else await clock.stop(a.ms);
          // Known gap, on main too (reported with issue 22): a document read after a Hyper-V
          // pause but before the detector's next tick counts as read before the pause, so
          // a second Freeze Started in it looks frozen already. The plain configuration
          // keeps the original ordering; the fleet one lets the detector tick first.
          if (fleet && a.hyperv) await clock.advance(TICK);
          lastJustified = clock.now(); // the freeze itself was a reason until it ended
          e.frozeDone = true;
          // Everything on the VM froze, the event's copies too.
          for (const w of world)
            if (w.type === e.type && w.status === 'Started') w.frozeDone = true;
          poll(); // the overdue poll timer fires right after the resume
          // The VM runs on for a moment before anything else happens to it (two clock
          // steps inside one detector tick would cancel out).
          await clock.advance(300);
          break;
        }
        case 'end': {
          const e = pick(a.which, active);
          if (e) e.status = a.how === 'remove' ? 'gone' : a.how;
          poll();
          break;
        }
        case 'newId': {
          const e = pick(a.which, (w) => w.status === 'Started' && w.frozeDone);
          if (e) e.id = `E${++seq}`;
          poll();
          break;
        }
        case 'stopPause': {
          // Not the freeze: only when no event of ours is between Started and its freeze.
          if (world.some((w) => w.status === 'Started' && !w.frozeDone)) break;
          await clock.stop(a.ms);
          poll();
          break;
        }
        case 'ntpBack':
          clock.setWall(clock.now() - a.ms);
          await clock.advance(300);
          poll();
          break;
        case 'advance':
          await advance(a.ms);
          break;
        case 'fleet':
          fleet?.change(a.mode, a.peersReady, a.notify);
          await clock.flush();
          break;
        case 'odd':
          if (a.kind === 'dup') source.publish(document(document().Events.slice(0, 1)));
          else if (a.kind === 'malformed')
            source.publish(
              document([
                { EventId: 'bad', EventType: 'Freeze', Resources: [VM], NotBefore: 'soon' },
              ]),
            );
          else {
            incarnation -= 5;
            poll();
          }
          break;
      }
      check();
    }
    // The maintenance is over: the document empties.
    for (const e of world) e.status = 'gone';
    poll();
    await advance(bound);
    if (guard.state !== 'idle' || !guard.isReady())
      fail(`I5: not idle ${bound} ms after the document emptied`);
  } finally {
    // stop() waits for a prepare in flight to finish or time out: let the fake time run.
    let stopped = false;
    const stopping = guard.stop().then(() => {
      stopped = true;
    });
    for (let i = 0; i < 100 && !stopped; i++) await clock.advance(250);
    await stopping;
  }
  for (let i = 0; i < 3; i++) {
    if (calls.prepare[i] !== calls.resume[i])
      fail(`I4: p${i} prepared ${calls.prepare[i]} times, resumed ${calls.resume[i]} times`);
  }
  if (fleet?.holdsSlot) fail('F3: the slot is still held after the guard stopped');
}

describe('the guard against a simulated platform (model-based, fast-check)', () => {
  afterAll(() => {
    if (plain.sequences > 0) console.log(summary('model', plain));
    if (withFleet.sequences > 0) {
      const gap = `, ${withFleet.lateTraffic} of them during a late traffic phase`;
      console.log(summary('model with a fleet', withFleet, gap));
    }
  });

  it(`holds I1–I5 over ${RUNS} generated sequences`, async () => {
    // MODEL_REPLAY='<counterexample JSON>' (with MODEL_TRACE=1 for the guard's log) replays
    // one failing sequence instead.
    if (process.env.MODEL_REPLAY) {
      const sc = JSON.parse(process.env.MODEL_REPLAY) as Scenario;
      if (!sc.fleet) await run(sc, plain);
      return;
    }
    await fc.assert(
      fc.asyncProperty(scenarioArb, (sc) => run(sc as Scenario, plain)),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    expect(plain.sequences).toBeGreaterThanOrEqual(RUNS);
  }, 600_000);

  it(`holds I1–I5 and F1–F3 with an in-memory fleet over ${RUNS} generated sequences`, async () => {
    if (process.env.MODEL_REPLAY) {
      const sc = JSON.parse(process.env.MODEL_REPLAY) as Scenario;
      if (sc.fleet) await run(sc, withFleet);
      return;
    }
    await fc.assert(
      fc.asyncProperty(fleetScenarioArb, (sc) => run(sc as Scenario, withFleet)),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    expect(withFleet.sequences).toBeGreaterThanOrEqual(RUNS);
  }, 600_000);
});
