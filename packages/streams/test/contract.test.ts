import { Writable } from 'node:stream';
import { participantContract } from '@freezeguard/core/testing';
import { describe, it } from 'vitest';
import { guardFlushable, guardWritable } from '../src/index.js';

// The participant contract of @freezeguard/core/testing, against each streams helper.

describe('guardWritable keeps the participant contract', () => {
  const cases = participantContract(
    (guard) => {
      // A sink whose write callback we hold: while held, the stream does not drain.
      let held: (() => void)[] = [];
      let holding = false;
      const stream = new Writable({
        highWaterMark: 16,
        write(_chunk, _enc, callback) {
          if (holding) held.push(() => callback());
          else callback();
        },
      });
      const handle = guardWritable(guard, stream, { name: 'sink' });
      return {
        handle,
        busy() {
          holding = true;
          stream.write(Buffer.alloc(64));
        },
        idle() {
          holding = false;
          const waiting = held;
          held = [];
          for (const release of waiting) release();
        },
      };
    },
    { slowPrepare: true },
  );
  for (const c of cases) it(c.name, c.run, 20_000);
});

describe('guardFlushable keeps the participant contract', () => {
  const cases = participantContract(
    (guard) => {
      let release: (() => void) | null = null;
      let slow = false;
      const handle = guardFlushable(guard, {
        name: 'buffer',
        // A flush that honours nothing but its own completion: the deadline must end it.
        flush: () =>
          slow
            ? new Promise<void>((resolve) => {
                release = resolve;
              })
            : undefined,
      });
      return {
        handle,
        busy() {
          slow = true;
        },
        idle() {
          slow = false;
          release?.();
        },
      };
    },
    { slowPrepare: true },
  );
  for (const c of cases) it(c.name, c.run, 20_000);
});
