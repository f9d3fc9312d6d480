import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  acceptTerm,
  approver,
  type EventApproval,
  electionStep,
  superseded,
  watchdog,
} from '../src/local/decide.js';

// The decisions of VM-local coordination against generated sequences: who approves (the
// leader's registry as processes join, prepare, leave and claim), the election and its
// fencing (processes frozen, thawed and killed), and the follower's watchdog.

const SEED = 1907;
const RUNS = 400;

type Op =
  | { k: 'join'; m: string }
  | { k: 'leave'; m: string }
  | { k: 'prepare'; m: string; e: string }
  | { k: 'claim' };

const MEMBERS = ['a', 'b', 'c', 'd'];
const EVENTS = ['E1', 'E2'];
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({ k: fc.constant('join' as const), m: fc.constantFrom(...MEMBERS) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ k: fc.constant('leave' as const), m: fc.constantFrom(...MEMBERS) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      k: fc.constant('prepare' as const),
      m: fc.constantFrom('L', ...MEMBERS),
      e: fc.constantFrom(...EVENTS),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ k: fc.constant('claim' as const) }), weight: 1 },
);

describe('who approves (generated sequences of joins, prepares, leaves, claims)', () => {
  it('grants only when every live process prepared, at most one approval per event, never stuck', () => {
    let sequences = 0;
    let steps = 0;
    let grants = 0;
    let regrants = 0;
    let approvals = 0;
    fc.assert(
      fc.property(fc.array(op, { minLength: 10, maxLength: 40 }), (ops) => {
        sequences++;
        const live = new Set(['L', 'a', 'b', 'c']);
        const events = new Map<string, EventApproval & { prepared: string[] }>();
        const claims = new Map<string, number>();
        const grant = (e: string, reporter: string | null) => {
          const record = events.get(e)!;
          const who = approver(record, [...live], 'L', reporter);
          if (who === null) return;
          // Safety: every live process prepared when the grant is made.
          for (const m of live) expect(record.prepared).toContain(m);
          expect(live.has(who)).toBe(true);
          if (record.grantedTo !== null) regrants++;
          grants++;
          events.set(e, { ...record, grantedTo: who });
        };
        for (const o of ops) {
          steps++;
          if (o.k === 'join') live.add(o.m);
          else if (o.k === 'leave') live.delete(o.m);
          else if (o.k === 'prepare') {
            if (!live.has(o.m)) continue;
            const record = events.get(o.e) ?? { prepared: [], grantedTo: null, done: false };
            if (!record.prepared.includes(o.m)) record.prepared.push(o.m);
            events.set(o.e, record);
            grant(o.e, o.m);
          } else {
            // The holder of some grant takes its claim (an exclusive create).
            for (const [e, record] of events) {
              if (record.grantedTo === null || record.done || !live.has(record.grantedTo)) continue;
              claims.set(e, (claims.get(e) ?? 0) + 1);
              approvals++;
              events.set(e, { ...record, done: true, grantedTo: null });
              break;
            }
          }
          // The leader decides again after every change (a leave may complete a set).
          for (const e of events.keys()) grant(e, null);
          for (const [e, record] of events) {
            expect(claims.get(e) ?? 0).toBeLessThanOrEqual(1);
            const complete = [...live].every((m) => record.prepared.includes(m));
            // Liveness: a complete, unapproved event always has a live grantee.
            if (complete && !record.done) expect(live.has(record.grantedTo ?? '')).toBe(true);
            // Nobody holds a grant for an incomplete set it got before someone joined…
            // unless it was granted before the join: then it stands (the approval is due).
          }
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    process.stdout.write(
      `local approvals: ${sequences} sequences, ${steps} steps, ${grants} grants (${regrants} after the grantee left), ${approvals} approvals (seed ${SEED})\n`,
    );
    expect(approvals).toBeGreaterThan(0);
    expect(regrants).toBeGreaterThan(0);
  });

  it('prefers the process whose report completed the set, then the leader', () => {
    const e = { prepared: ['L', 'a', 'b'], grantedTo: null, done: false };
    expect(approver(e, ['L', 'a', 'b'], 'L', 'b')).toBe('b');
    expect(approver(e, ['L', 'a', 'b'], 'L', null)).toBe('L');
    expect(approver({ ...e, prepared: ['a', 'b'] }, ['a', 'b'], 'L', null)).toBe('a');
    expect(approver({ ...e, grantedTo: 'a' }, ['L', 'a', 'b'], 'L', 'b')).toBe(null);
    expect(approver({ ...e, done: true }, ['L', 'a', 'b'], 'L', 'b')).toBe(null);
  });
});

type ProcState = 'alive' | 'frozen' | 'dead';
type EOp = { k: 'freeze' | 'thaw' | 'kill' | 'tick' | 'publish'; p: number } | { k: 'spawn' };

describe('election and fencing (generated sequences of freezes, thaws, kills)', () => {
  it('one running leader that is not superseded; followers never accept an older term', () => {
    let sequences = 0;
    let elections = 0;
    let stepDowns = 0;
    let dropped = 0;
    let accepted = 0;
    const on = (k: 'freeze' | 'thaw' | 'kill' | 'tick' | 'publish', weight: number) => ({
      arbitrary: fc.record({ k: fc.constant(k), p: fc.nat(1) }),
      weight,
    });
    const eop: fc.Arbitrary<EOp> = fc.oneof(
      on('freeze', 2),
      on('thaw', 2),
      on('kill', 1),
      on('tick', 2),
      on('publish', 3),
      { arbitrary: fc.record({ k: fc.constant('spawn' as const) }), weight: 1 },
    );
    const start: EOp[] = [{ k: 'spawn' }, { k: 'spawn' }, { k: 'spawn' }];
    fc.assert(
      fc.property(fc.array(eop, { minLength: 10, maxLength: 60 }), (generated) => {
        sequences++;
        const ops = [...start, ...generated];
        // Socket files by term → owner; the epoch file; each process's view.
        const files = new Map<number, number>();
        let epoch = 0;
        const procs: { state: ProcState; leading: number | null; seen: number; lost: number }[] =
          [];
        const leaderAlive = (term: number) => {
          const owner = procs[files.get(term) ?? -1];
          return owner?.state === 'alive' && owner.leading === term;
        };
        const elect = (i: number) => {
          elections++;
          const p = procs[i]!;
          for (let attempt = 0; attempt < 3; attempt++) {
            const { follow, claim } = electionStep({
              terms: [...files.keys()],
              epoch,
              seen: p.seen,
              lost: p.lost,
            });
            if (follow !== null && leaderAlive(follow)) {
              p.seen = follow;
              p.leading = null;
              return;
            }
            if (!files.has(claim)) {
              files.set(claim, i);
              epoch = Math.max(epoch, claim);
              p.seen = claim;
              p.leading = claim;
              return;
            }
          }
        };
        // Running processes whose leader is gone elect (as their watchdog makes them).
        const settle = () => {
          for (let i = 0; i < procs.length; i++) {
            const p = procs[i]!;
            if (p.state !== 'alive' || p.leading !== null) continue;
            const top = Math.max(0, ...files.keys());
            if (top >= p.seen && files.size > 0 && leaderAlive(top)) continue;
            // Its watchdog judged the leader it followed gone: that term is not asked again.
            if (!leaderAlive(p.seen)) p.lost = Math.max(p.lost, p.seen);
            elect(i);
          }
        };
        for (const o of ops) {
          if (o.k === 'spawn') {
            procs.push({ state: 'alive', leading: null, seen: 0, lost: 0 });
            elect(procs.length - 1);
          } else {
            const p = procs[o.p];
            if (!p || p.state === 'dead') continue;
            if (o.k === 'freeze' && p.state === 'alive') p.state = 'frozen';
            else if (o.k === 'thaw' && p.state === 'frozen') p.state = 'alive';
            else if (o.k === 'kill') {
              p.state = 'dead';
              // A clean exit removes the socket file; a kill leaves it (both happen).
              if (p.leading !== null && o.p % 2 === 0) files.delete(p.leading);
              p.leading = null;
            } else if (o.k === 'tick' && p.state === 'alive' && p.leading !== null) {
              if (superseded(p.leading, [...files.keys()])) {
                stepDowns++;
                p.lost = Math.max(p.lost, p.leading);
                files.delete(p.leading);
                p.leading = null;
              }
            } else if (o.k === 'publish' && p.state === 'alive' && p.leading !== null) {
              // Every follower judges the document by its term.
              for (const f of procs) {
                if (f === p || f.state !== 'alive' || f.leading !== null) continue;
                if (acceptTerm(p.leading, f.seen)) {
                  accepted++;
                  f.seen = p.leading;
                } else dropped++;
              }
            }
          }
          settle();
          // At most one running leader that no higher term superseded.
          const running = procs.filter(
            (p) =>
              p.state === 'alive' &&
              p.leading !== null &&
              !superseded(p.leading, [...files.keys()]),
          );
          expect(running.length).toBeLessThanOrEqual(1);
          // Some running process leads whenever one runs at all.
          if (procs.some((p) => p.state === 'alive')) {
            expect(procs.some((p) => p.state === 'alive' && p.leading !== null)).toBe(true);
          }
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    process.stdout.write(
      `local election: ${sequences} sequences, ${elections} elections, ${stepDowns} thawed leaders stepped down, ${accepted} documents accepted, ${dropped} dropped by fencing (seed ${SEED})\n`,
    );
    expect(stepDowns).toBeGreaterThan(0);
    expect(dropped).toBeGreaterThan(0);
  });
});

describe('electionStep', () => {
  it('follows the newest socket unless it is older than seen or the term just judged gone', () => {
    expect(electionStep({ terms: [3, 4], epoch: 4, seen: 4 })).toEqual({ follow: 4, claim: 5 });
    expect(electionStep({ terms: [], epoch: 0, seen: 0 })).toEqual({ follow: null, claim: 1 });
    // A frozen leader's socket is still there: asking it again would only add a wait.
    expect(electionStep({ terms: [4], epoch: 4, seen: 4, lost: 4 })).toEqual({
      follow: null,
      claim: 5,
    });
    // A successor newer than the lost leader is asked.
    expect(electionStep({ terms: [4, 5], epoch: 5, seen: 4, lost: 4 })).toEqual({
      follow: 5,
      claim: 6,
    });
    // A stale socket older than a term already seen is not.
    expect(electionStep({ terms: [3], epoch: 6, seen: 6 })).toEqual({ follow: null, claim: 7 });
  });
});

describe('watchdog (generated silences and late ticks)', () => {
  it('never elects while the leader speaks or this process was paused; elects after suspect + probe of silence', () => {
    let ticks = 0;
    let elects = 0;
    let paused = 0;
    const suspectMs = 1200;
    const probeMs = 400;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gap: fc.integer({ min: 50, max: 400 }),
            late: fc.nat(3000),
            heard: fc.nat(9).map((n) => n === 0),
          }),
          {
            minLength: 1,
            maxLength: 60,
          },
        ),
        (steps) => {
          let now = 0;
          let lastHeard = 0;
          let probeSentAt: number | null = null;
          for (const s of steps) {
            ticks++;
            const due = now + s.gap;
            now = due + (s.late > 2900 ? s.late : 0);
            if (s.heard) lastHeard = now - 1;
            const v = watchdog({ now, due, lastHeard, probeSentAt, suspectMs, probeMs });
            if (v === 'self-paused') {
              paused++;
              lastHeard = now;
              probeSentAt = null;
            } else if (v === 'probe') probeSentAt = now;
            else if (v === 'elect') {
              elects++;
              expect(now - lastHeard).toBeGreaterThanOrEqual(suspectMs + probeMs - 400);
              expect(now - due).toBeLessThanOrEqual(suspectMs / 2);
              return;
            }
          }
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // A silent leader and a punctual follower: elected within suspect + probe + 2 ticks.
    let now = 0;
    let probeSentAt: number | null = null;
    let verdict = 'ok';
    while (verdict !== 'elect') {
      now += 250;
      verdict = watchdog({ now, due: now, lastHeard: 0, probeSentAt, suspectMs, probeMs });
      if (verdict === 'probe') probeSentAt = now;
    }
    expect(now).toBeLessThanOrEqual(suspectMs + probeMs + 500);
    process.stdout.write(
      `local watchdog: ${ticks} ticks, ${elects} elections, ${paused} self-pauses ignored; a silent leader is replaced after ${now} ms (seed ${SEED})\n`,
    );
  });
});
