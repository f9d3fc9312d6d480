// The fleet's lines carry the one `freezeguard: ` prefix and say where they come from.
import { recordingLogger } from '@freezeguard/core/testing';
import { expect, it } from 'vitest';
import { fleetLogger } from '../src/log.js';

it('adds { component: "fleet" } to the facts of every record, message untouched', () => {
  const inner = recordingLogger();
  const log = fleetLogger(inner);
  log.warn({ slot: 1 }, 'freezeguard: drain slot lost; the guard decides again');
  log.info('freezeguard: drain slot granted');
  expect(inner.lines).toEqual([
    {
      level: 'warn',
      msg: 'freezeguard: drain slot lost; the guard decides again',
      obj: { slot: 1, component: 'fleet' },
    },
    { level: 'info', msg: 'freezeguard: drain slot granted', obj: { component: 'fleet' } },
  ]);
});
